"""Every parse runs under a size, CPU and memory budget (service.parse): a payload over one
goes to the quarantine with its reason, and the rest of its batch becomes tickets. The CPU
budget is real for C code: the spinning normalizer below burns its time inside the regex
engine, which no Python signal interrupts; only the child process's RLIMIT_CPU stops it."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from connectors.registry import normalize
from omnidesk.budget import normalize_within
from omnidesk.config import ParseBudget
from omnidesk.errors import PayloadError
from omnidesk.model import Channel, Inbound, RawPayload, Skipped
from omnidesk.pipeline import Pipeline, make_broker
from omnidesk.runtime import Runtime
from tests.services import wait_for
from tests.storekit import REDIS_URL, config_for, email, web

_BACKTRACK = re.compile(r"(a+)+$")


def spinning_normalize(
    channel: Channel | str,
    payload: bytes,
    *,
    account: str = "default",
    received_at: datetime | None = None,
) -> Sequence[Inbound | Skipped]:
    """The real normalizer, after 3 s of CPU in C (regex backtracking) for a "SPIN" payload,
    or 512 MB of memory for a "HUNGRY" one."""
    if b"SPIN" in payload:
        start = time.process_time()
        while time.process_time() - start < 3:
            _BACKTRACK.match("a" * 20 + "!")
    if b"HUNGRY" in payload:  # 512 MB, as a runaway parser's tree would take
        bytearray(512 * 1024 * 1024)
    return normalize(channel, payload, account=account, received_at=received_at)


def replace_payload(raw: RawPayload, payload: bytes) -> RawPayload:
    return RawPayload(
        channel=raw.channel,
        account=raw.account,
        payload=payload,
        received_at=raw.received_at,
        source=raw.source,
    )


def runtime_with(prefix: str, tmp_path: Path, **budget: int) -> Runtime:
    loaded = config_for(prefix, tmp_path / "state")
    service = loaded.data.service.model_copy(update={"parse": ParseBudget(**budget)})
    loaded = replace(loaded, data=loaded.data.model_copy(update={"service": service}))
    return Runtime.from_config(loaded, normalize=spinning_normalize)


def test_a_payload_over_the_size_budget_is_quarantined_unread(prefix: str, tmp_path: Path) -> None:
    runtime = runtime_with(prefix, tmp_path, max_bytes=2048)
    big = email("big@example.com", "attachment " * 500, sender="big@example.com")
    batch = [web("first", email="a@example.sa"), big, web("third", email="c@example.sa")]
    report = runtime.process(batch)
    assert report.outcomes["opened"] == 2 and report.quarantined == [big.source]
    (item,) = runtime.quarantine.list()
    assert item.reason == "too_large" and item.size == len(big.payload)


@pytest.mark.parametrize("inline_bytes", [0, 1_000_000], ids=["child", "inline"])
def test_a_parse_over_the_cpu_budget_is_stopped_and_the_batch_goes_on(
    prefix: str, tmp_path: Path, inline_bytes: int
) -> None:
    runtime = runtime_with(prefix, tmp_path, inline_bytes=inline_bytes, cpu_s=1)
    spinner = web("SPIN", email="spin@example.sa")
    report = runtime.process([spinner, web("fine", email="fine@example.sa")])
    assert report.outcomes["opened"] == 1 and report.quarantined == [spinner.source]
    (item,) = runtime.quarantine.list()
    assert item.reason == "parse_budget"
    assert "1 s of CPU" in item.error


def test_a_parse_in_a_child_gives_what_an_inline_parse_gives(prefix: str, tmp_path: Path) -> None:
    child = runtime_with(prefix, tmp_path, inline_bytes=0)
    inline = runtime_with(prefix, tmp_path / "inline")
    mail = email("same@example.com", "مرحبا " * 100, subject="Question")
    assert child.normalize is spinning_normalize
    ours = child.prepare(mail)
    theirs = inline.prepare(mail)
    assert ours is not None and theirs is not None
    assert [i for i, _d in ours] == [i for i, _d in theirs]
    bad = web("x")
    bad.payload = b"{not json"
    assert child.prepare(bad) is None
    (item,) = child.quarantine.list()
    assert item.reason == "not_json"  # the child's PayloadError keeps its reason


def deep_html_mail(levels: int) -> bytes:
    html = "<div>" * levels + "Please renew my registration." + "</div>" * levels
    return (
        "From: Deep <deep@example.com>\r\nTo: care@mc.gov.sa\r\nSubject: Deep\r\n"
        "Message-ID: <deep@example.com>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"{html}\r\n"
    ).encode()


def test_a_mail_nested_a_hundred_thousand_deep_is_read_within_the_budget(
    prefix: str, tmp_path: Path
) -> None:
    """Took 24 s of CPU in Lexbor before the depth cap (bench/html_depth.py); 2 s is plenty."""
    runtime = runtime_with(prefix, tmp_path, cpu_s=2)
    deep = replace_payload(email("x@example.com", "x"), deep_html_mail(100_000))
    report = runtime.process([deep, web("fine", email="fine@example.sa")])
    assert report.quarantined == [] and report.outcomes["opened"] == 2
    (ticket,) = [t for t in runtime.store.list_tickets() if t.subject == "Deep"]
    assert "Please renew my registration." in runtime.store.ticket_messages(ticket.id)[0].text


def test_a_dramatiq_worker_thread_parses_in_children_and_quarantines_the_spinner(
    prefix: str, tmp_path: Path
) -> None:
    """The real worker: its threads fork the parse children, and a spinner stops only its own
    payload while the rest of the batch becomes tickets."""
    runtime = runtime_with(prefix, tmp_path, inline_bytes=0, cpu_s=1)
    broker = make_broker(REDIS_URL, prefix)
    pipeline = Pipeline(runtime, broker)
    worker = pipeline.start_worker(threads=2)
    try:
        batch = [web(f"form {i}", email=f"c{i}@example.sa") for i in range(4)]
        batch.insert(2, web("SPIN", email="spin@example.sa"))
        pipeline.handover_sync(batch, batch_size=5)
        assert wait_for(lambda: runtime.store.ticket_count() == 4 and runtime.quarantine.size())
    finally:
        worker.stop(timeout=5_000)
        broker.close()
    (item,) = runtime.quarantine.list()
    assert item.reason == "parse_budget"


def test_a_parse_over_the_memory_budget_fails_in_its_child(prefix: str, tmp_path: Path) -> None:
    """The OOM killer would otherwise pick a victim: Redis, the worker, anything."""
    runtime = runtime_with(prefix, tmp_path, inline_bytes=0, max_memory_mb=64)
    hungry = web("HUNGRY", email="hungry@example.sa")
    report = runtime.process([hungry, web("fine", email="fine@example.sa")])
    assert report.outcomes["opened"] == 1 and report.quarantined == [hungry.source]
    (item,) = runtime.quarantine.list()
    assert item.reason == "parse_budget" and "64 MB of memory" in item.error


def test_what_parsers_import_lazily_is_imported_before_the_first_fork() -> None:
    """A module another thread is importing at a fork stays locked in the child, which
    then hangs until the wall-clock limit: a cp1256 mail would go to the quarantine."""
    lazy = ["encodings.cp1256", "email.feedparser", "phonenumbers.data.region_EG"]
    lazy += ["connectors.email.normalize", "connectors.web"]
    code = (
        "import sys\n"
        "from omnidesk.budget import normalize_within\n"
        "from omnidesk.config import ParseBudget\n"
        "from connectors.registry import normalize\n"
        'form = b\'{"message": "x", "email": "a@example.sa"}\'\n'
        "budget = ParseBudget(inline_bytes=0)\n"
        "normalize_within(normalize, 'web', form, account='site', budget=budget)\n"
        f"print([name for name in {lazy!r} if name not in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _write_end_of_pipe(fd: int) -> str | None:
    """ "pipe:[inode]" when `fd` is the write end of a pipe, else None."""
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
        with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as info:
            flags = next(int(line.split()[1], 8) for line in info if line.startswith("flags:"))
    except OSError:
        return None
    return link if link.startswith("pipe:") and flags & os.O_ACCMODE == os.O_WRONLY else None


def pipe_ends_normalize(
    channel: Channel | str, payload: bytes, *, account: str = "default"
) -> Sequence[Inbound | Skipped]:
    """In the parse child: the write end of its own pipe, and every pipe write end it holds."""
    sender = multiprocessing.current_process()._args[0]  # type: ignore[attr-defined]
    held = [end for fd in map(int, os.listdir("/proc/self/fd")) if (end := _write_end_of_pipe(fd))]
    own = _write_end_of_pipe(sender.fileno())
    return [Skipped(reason=json.dumps({"own": own, "held": held}))]


def test_no_parse_child_holds_the_pipe_of_another_parse() -> None:
    """Its child killed at the CPU limit, a parse learns it from the end of its pipe; a child
    of another thread's parse holding that pipe open too would hide it until the wall clock."""
    budget = ParseBudget(inline_bytes=0)
    reports: list[dict[str, object]] = []

    def parse_many() -> None:
        for _ in range(15):
            (skipped,) = normalize_within(
                pipe_ends_normalize, "web", b"{}", account="site", budget=budget
            )
            assert isinstance(skipped, Skipped)
            reports.append(json.loads(skipped.reason))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: forks of three threads interleave
    try:
        threads = [threading.Thread(target=parse_many) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    senders = {report["own"] for report in reports}
    assert len(reports) == 45 and len(senders) == 45
    assert [set(r["held"]) & senders for r in reports] == [{r["own"]} for r in reports]


def lexbor_normalize(
    channel: Channel | str, payload: bytes, *, account: str = "default"
) -> Sequence[Inbound | Skipped]:
    """Lexbor straight on the payload, as html_to_text did before formatting tags were left
    out: a C parser that runs away with memory and reports it only as a vague error."""
    LexborHTMLParser(payload.decode())
    return []


def test_a_c_parser_out_of_memory_in_its_child_is_over_the_parse_budget() -> None:
    """500 formatting tags re-opened in each of 2,000 paragraphs: a million elements, about
    400 MB unbounded; Lexbor stops at the 64 MB limit with "Can't parse HTML"."""
    html = "<div>" + "".join(f"<b id={i}>" for i in range(500)) + "</div>" + "<p>x</p>" * 2000
    budget = ParseBudget(inline_bytes=0, max_memory_mb=64)
    with pytest.raises(PayloadError) as refused:
        normalize_within(lexbor_normalize, "web", html.encode(), account="site", budget=budget)
    assert refused.value.reason == "parse_budget" and "64 MB of memory" in str(refused.value)
