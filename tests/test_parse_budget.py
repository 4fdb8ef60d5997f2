"""Every parse runs under a size and CPU budget (service.parse): a payload over either goes to
the quarantine with its reason, and the rest of its batch becomes tickets. The CPU budget is
real for C code: the spinning normalizer below burns its time inside the regex engine, which
no Python signal interrupts; only the child process's RLIMIT_CPU stops it."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from connectors.registry import normalize
from omnidesk.config import ParseBudget
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
    """The real normalizer, after 3 s of CPU in C (regex backtracking) for a "SPIN" payload."""
    if b"SPIN" in payload:
        start = time.process_time()
        while time.process_time() - start < 3:
            _BACKTRACK.match("a" * 20 + "!")
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
