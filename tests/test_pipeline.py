"""The dramatiq pipeline on the real Redis: hand-over to tickets, quarantine and retry, the
archive, delivery with retries, escalation, Redis down at hand-over, and a worker killed
with SIGKILL in the middle of a batch."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import dramatiq
import pytest

from connectors.maildir import MaildirConfig, MaildirConnector
from omnidesk.archive import Archive
from omnidesk.errors import PayloadError, PermanentError, StoreUnavailable, TransientError
from omnidesk.model import Channel, Outbound, RawPayload, Receipt, Status
from omnidesk.pipeline import Pipeline, make_broker, register_sender, unregister_sender
from omnidesk.runtime import Runtime
from omnidesk.senders import register_connector_sender
from omnidesk.store import Store
from tests.services import wait_for
from tests.storekit import REDIS_URL, email, telegram, web, write_config

ROOT = Path(__file__).resolve().parent.parent


def test_handover_batches_become_tickets(pipeline: Pipeline, worker: dramatiq.Worker) -> None:
    raws = [web(f"شكوى {i}", email=f"c{i}@example.sa") for i in range(7)]
    raws += [
        telegram(1, 42, 1, "السجل التجاري منتهي"),
        email("p1@example.com", "hello", subject="Question"),
    ]
    asyncio.run(pipeline.handover(raws, batch_size=3))
    store = pipeline.runtime.store
    assert wait_for(lambda: store.ticket_count() == 9)
    assert store.queue_depths() == {"complaints": 7, "cr": 1, "general": 1}
    ticket = store.list_tickets(queue="cr")[0]
    raw_ref = store.ticket_messages(ticket.id)[0].raw_ref
    archive = pipeline.runtime.archive
    assert archive is not None and raw_ref is not None
    assert archive.get(raw_ref) == raws[7].payload  # the ticket can show its original


def test_malformed_payload_is_quarantined_whole_and_retry_works_after_a_fix(
    runtime: Runtime,
) -> None:
    bad = RawPayload(
        channel=Channel.WEB,
        account="site",
        payload='{"message": "مرحبا", "email": "a@b.sa", "national_id": "1012345678"}'.encode(),
        received_at=datetime.now(UTC),
        source="http:/v1/intake/web",
    )
    good = web("ok", email="fine@example.sa")
    report = runtime.process([bad, good])
    assert report.quarantined == ["http:/v1/intake/web"]
    assert [r.outcome for r in report.results] == ["opened"]
    items = runtime.quarantine.list()
    assert len(items) == 1 and items[0].reason == "invalid_form"
    assert "national_id: unknown field" in items[0].error
    item = runtime.quarantine.get(items[0].id)
    assert item is not None and item.payload == bad.payload and item.source == bad.source
    with pytest.raises(PayloadError):
        runtime.retry_quarantined(item.id)  # nothing fixed yet: it stays
    assert runtime.quarantine.size() == 1

    # the fix: the form grew a field and the normalizer (our code) learned to drop it
    real = runtime.normalize

    def fixed(channel, payload, *, account, received_at):
        form = json.loads(payload)
        form.pop("national_id", None)
        return real(channel, json.dumps(form).encode(), account=account, received_at=received_at)

    runtime.normalize = fixed
    results = runtime.retry_quarantined(item.id)
    assert [r.outcome for r in results] == ["opened"]
    assert runtime.quarantine.size() == 0
    assert runtime.store.ticket_count() == 2


def test_unknown_email_and_bad_json_land_in_quarantine_not_crash(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    raws = [
        RawPayload(channel=Channel.TELEGRAM, account="bot", payload=b"{not json", received_at=now),
        RawPayload(channel=Channel.WEB, account="site", payload=b"\xff\xfe", received_at=now),
    ]
    report = runtime.process(raws)
    assert len(report.quarantined) == 2 and report.results == []
    assert {i.channel for i in runtime.quarantine.list()} == {Channel.TELEGRAM, Channel.WEB}
    runtime.process(raws)  # a retried batch does not duplicate the items
    assert runtime.quarantine.size() == 2


def test_archive_is_content_addressed_atomic_and_pruned(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    digest = archive.put(b"raw payload")
    assert archive.put(b"raw payload") == digest
    path = archive.path(digest)
    assert path.parent.name == digest[:2] and path.parent.parent == tmp_path / "raw"
    # what an older version stored at raw/ab/cd/<sha256> is found there
    legacy = tmp_path / "raw" / "ab" / "cd"
    legacy.mkdir(parents=True)
    old_digest = "abcd" + "0" * 60
    (legacy / old_digest).write_bytes(b"stored by an older version")
    assert archive.get(old_digest) == b"stored by an older version"
    assert archive.path(old_digest) == legacy / old_digest
    assert archive.put(b"stored by an older version") != old_digest  # (not its real sha)
    real = hashlib.sha256(b"kept in the old layout").hexdigest()
    (tmp_path / "raw" / real[:2] / real[2:4]).mkdir(parents=True, exist_ok=True)
    (tmp_path / "raw" / real[:2] / real[2:4] / real).write_bytes(b"kept in the old layout")
    assert archive.put(b"kept in the old layout") == real  # stored once: not copied anew
    assert not (tmp_path / "raw" / real[:2] / real).exists()
    assert set(archive.paths(real)) == {archive.root / real[:2] / real,
                                        archive.root / real[:2] / real[2:4] / real}  # fmt: skip
    assert archive.get(digest) == b"raw payload"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
    other = archive.put(b"newer")
    old = time.time() - 40 * 86400
    os.utime(path, (old, old))
    assert archive.prune(30) == 1
    assert archive.get(digest) is None and archive.get(other) == b"newer"


def test_redis_down_at_handover_raises_store_unavailable(runtime: Runtime) -> None:
    broker = make_broker("redis://127.0.0.1:1/0", "nowhere")
    pipe = Pipeline(runtime, broker)
    with pytest.raises(StoreUnavailable):
        asyncio.run(pipe.handover([web("hello", email="a@b.sa")]))
    down = Runtime(
        store=Store.from_url("redis://127.0.0.1:1/0"),
        route=runtime.route,
        normalize=runtime.normalize,
    )
    with pytest.raises(TransientError):
        down.process([web("hello", email="a@b.sa")])


def sender(calls: list[str], *, flaky: str) -> Callable[[Outbound], Awaitable[Receipt]]:
    """A channel's sender that records each try: `flaky` fails for now on its first try,
    "bad" fails for good, the rest are sent."""

    async def send(out: Outbound) -> Receipt:
        calls.append(out.id)
        if out.id == flaky and calls.count(flaky) == 1:
            raise TransientError("rate limited", retry_after=0.05)
        if out.id == "bad":
            raise PermanentError("recipient unknown")
        return Receipt(outbound_id=out.id, status="sent", external_id="x1")

    return send


def test_deliver_retries_transient_errors_then_records_the_outcome(
    pipeline: Pipeline, worker: dramatiq.Worker
) -> None:
    store = pipeline.runtime.store
    tid = pipeline.runtime.process([web("hello", email="a@b.sa")]).results[0].ticket_id
    assert tid is not None
    calls: list[str] = []
    register_sender(Channel.WEB, "site", sender(calls, flaky="ok"))
    try:
        for out_id in ("ok", "bad"):
            out = Outbound(id=out_id, ticket_id=tid, channel=Channel.WEB, account="site", text="رد")
            store.add_outbound_message(out, author="agent:1")
            pipeline.send_reply(out)
        assert wait_for(lambda: store.get_message("ok").delivery == "sent")  # type: ignore[union-attr]
        assert wait_for(lambda: store.get_message("bad").delivery != "queued")  # type: ignore[union-attr]
    finally:
        unregister_sender(Channel.WEB, "site")
    assert calls.count("ok") == 2 and calls.count("bad") == 1
    assert store.get_message("bad").delivery == "failed: recipient unknown"  # type: ignore[union-attr]
    deliveries = [e for _, e in store.events() if e["type"] == "delivery"]
    assert [e["delivery"] for e in deliveries if e["message"] == "ok"] == [
        "retrying: rate limited (attempt 1 of 8)",
        "sent",
    ]
    assert [e["delivery"] for e in deliveries if e["message"] == "bad"] == [
        "failed: recipient unknown"
    ]


def test_a_send_that_fails_for_now_shows_retrying_with_its_reason_until_it_is_sent(
    pipeline: Pipeline, worker: dramatiq.Worker
) -> None:
    """Issue 15: the message says at once why it is not out yet (and that it is tried
    again), not only when every attempt is spent; the next attempt's success replaces it."""
    store = pipeline.runtime.store
    tid = pipeline.runtime.process([web("hello", email="a@b.sa")]).results[0].ticket_id
    assert tid is not None
    seen: list[str | None] = []  # the message's status as each attempt starts

    async def send(out: Outbound) -> Receipt:
        seen.append(store.get_message(out.id).delivery)  # type: ignore[union-attr]
        if len(seen) == 1:
            raise TransientError("HTTP 503 from the channel", retry_after=0.3)
        return Receipt(outbound_id=out.id, status="sent", external_id="x1")

    register_sender(Channel.WEB, "site", send)
    try:
        out = Outbound(id="r1", ticket_id=tid, channel=Channel.WEB, account="site", text="رد")
        store.add_outbound_message(out, author="agent:1")
        pipeline.send_reply(out)
        assert wait_for(lambda: store.get_message("r1").delivery == "sent")  # type: ignore[union-attr]
    finally:
        unregister_sender(Channel.WEB, "site")
    retrying = "retrying: HTTP 503 from the channel (attempt 1 of 8)"
    assert seen == ["queued", retrying]  # recorded before the second attempt began
    deliveries = [e for _, e in store.events() if e["type"] == "delivery"]
    assert [e["delivery"] for e in deliveries] == [retrying, "sent"]


def test_a_batch_reply_that_fails_for_now_shows_retrying_before_its_retry(
    pipeline: Pipeline, worker: dramatiq.Worker
) -> None:
    store = pipeline.runtime.store
    tid = pipeline.runtime.process([web("hello", email="a@b.sa")]).results[0].ticket_id
    assert tid is not None
    seen: dict[str, list[str | None]] = {}

    async def send(out: Outbound) -> Receipt:
        seen.setdefault(out.id, []).append(store.get_message(out.id).delivery)  # type: ignore[union-attr]
        if out.id == "m2" and len(seen[out.id]) == 1:
            raise TransientError("timed out", retry_after=0.05)
        return Receipt(outbound_id=out.id, status="sent")

    outs = [
        Outbound(id=i, ticket_id=tid, channel=Channel.WEB, account="site", text="رد")
        for i in ("m1", "m2")
    ]
    for out in outs:
        store.add_outbound_message(out, author="omnidesk")
    register_sender(Channel.WEB, "site", send)
    try:
        pipeline.send_replies(outs)
        assert wait_for(lambda: store.get_message("m2").delivery == "sent")  # type: ignore[union-attr]
        assert wait_for(lambda: store.get_message("m1").delivery == "sent")  # type: ignore[union-attr]
    finally:
        unregister_sender(Channel.WEB, "site")
    assert seen == {"m1": ["queued"], "m2": ["queued", "retrying: timed out (attempt 1 of 8)"]}


def test_the_last_failed_attempt_says_failed_after_n_attempts(
    pipeline: Pipeline, worker: dramatiq.Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    import omnidesk.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "DELIVER_MAX_ATTEMPTS", 3)  # not 8 backoffs long
    store = pipeline.runtime.store
    tid = pipeline.runtime.process([web("hello", email="a@b.sa")]).results[0].ticket_id
    assert tid is not None

    async def send(out: Outbound) -> Receipt:
        raise TransientError("connection refused", retry_after=0.05)

    register_sender(Channel.WEB, "site", send)
    try:
        out = Outbound(id="f1", ticket_id=tid, channel=Channel.WEB, account="site", text="رد")
        store.add_outbound_message(out, author="agent:1")
        pipeline.send_reply(out)
        assert wait_for(
            lambda: store.get_message("f1").delivery.startswith("failed")  # type: ignore[union-attr]
        )
    finally:
        unregister_sender(Channel.WEB, "site")
    deliveries = [e["delivery"] for _, e in store.events() if e["type"] == "delivery"]
    assert deliveries == [
        "retrying: connection refused (attempt 1 of 3)",
        "retrying: connection refused (attempt 2 of 3)",
        "failed: connection refused (after 3 attempts)",
    ]


def test_a_batch_of_replies_goes_in_one_message_and_a_failed_one_is_retried_alone(
    pipeline: Pipeline, worker: dramatiq.Worker
) -> None:
    """send_replies hands a batch over as one `deliver_many` message: each is sent once,
    in order, and the statuses recorded; one that failed for now goes on alone through
    `deliver`, which counts the batch as its first attempt."""
    store = pipeline.runtime.store
    tid = pipeline.runtime.process([web("hello", email="a@b.sa")]).results[0].ticket_id
    assert tid is not None
    calls: list[str] = []

    ids = ["b1", "later", "bad", "b2"]
    outs = [
        Outbound(id=i, ticket_id=tid, channel=Channel.WEB, account="site", text="رد") for i in ids
    ]
    for out in outs:
        store.add_outbound_message(out, author="omnidesk")
    register_sender(Channel.WEB, "site", sender(calls, flaky="later"))
    try:
        pipeline.send_replies(outs)
        assert wait_for(lambda: store.get_message("later").delivery == "sent")  # type: ignore[union-attr]
        assert wait_for(lambda: store.get_message("b2").delivery == "sent")  # type: ignore[union-attr]
    finally:
        unregister_sender(Channel.WEB, "site")
    assert calls[:4] == ids and calls[4:] == ["later"]
    delivery = {i: store.get_message(i).delivery for i in ids}  # type: ignore[union-attr]
    assert delivery == {
        "b1": "sent",
        "later": "sent",
        "bad": "failed: recipient unknown",
        "b2": "sent",
    }


def test_a_drop_folders_outbox_takes_a_batch_in_one_write_and_keeps_each_ones_error(
    pipeline: Pipeline, worker: dramatiq.Worker, tmp_path: Path
) -> None:
    """A connector with `send_many` (the drop folder's outbox) gets a batch's replies in one
    call, one thread hop; a file that cannot be written fails alone, for now (retried), and
    the others are sent."""
    store = pipeline.runtime.store
    tid = pipeline.runtime.process([web("hello", email="a@b.sa")]).results[0].ticket_id
    assert tid is not None
    (tmp_path / "drop").mkdir()
    drop = MaildirConnector(MaildirConfig(name="site", path=str(tmp_path / "drop"), outbox=True))
    asyncio.run(drop.initialize())
    writes: list[int] = []
    write_outbox = drop._write_outbox

    def counted(files: list[tuple[str, bytes]]) -> list[OSError | None]:
        writes.append(len(files))
        return write_outbox(files)

    drop._write_outbox = counted  # type: ignore[method-assign]
    (drop.outbox / "o2.json").mkdir()  # o2's file cannot be put there: a disk error of its own
    ids = ["o1", "o2", "o3"]
    outs = [
        Outbound(id=i, ticket_id=tid, channel=Channel.WEB, account="site", text="رد") for i in ids
    ]
    for out in outs:
        store.add_outbound_message(out, author="omnidesk")
    assert register_connector_sender(drop)
    try:
        pipeline.send_replies(outs)
        assert wait_for(lambda: store.get_message("o3").delivery == "sent")  # type: ignore[union-attr]
        assert wait_for(lambda: "retrying" in (store.get_message("o2").delivery or ""))  # type: ignore[union-attr]
    finally:
        for channel in Channel:
            unregister_sender(channel, "site")
    assert writes[0] == 3  # the batch: one write of three files
    assert store.get_message("o1").delivery == "sent"  # type: ignore[union-attr]
    assert "outbox" in (store.get_message("o2").delivery or "")  # type: ignore[union-attr]
    assert sorted(p.name for p in drop.outbox.iterdir()) == ["o1.json", "o2.json", "o3.json"]
    assert (drop.outbox / "o2.json").is_dir()
    assert not list((tmp_path / "drop" / "tmp").glob(".outbox-*"))  # o2's half is not left
    assert json.loads((drop.outbox / "o3.json").read_text("utf-8"))["text"] == "رد"


def test_escalate_moves_the_ticket_with_an_event(
    pipeline: Pipeline, worker: dramatiq.Worker
) -> None:
    store = pipeline.runtime.store
    tid = pipeline.runtime.process([web("hello", email="a@b.sa")]).results[0].ticket_id
    pipeline.escalate.send(tid, "complaints", "first response breached")
    assert wait_for(lambda: store.get_ticket(tid).queue == "complaints")  # type: ignore[arg-type,union-attr]
    assert store.waiting("complaints") == [tid] and store.waiting("general") == []
    pipeline.notify.send(tid, "supervisors", "SLA at 80%")
    assert wait_for(lambda: any(e["type"] == "notified" for _, e in store.events()))
    escalated = [e for _, e in store.events() if e["type"] == "escalated"]
    assert escalated[0]["from"] == "general" and escalated[0]["reason"] == "first response breached"
    assert store.get_ticket(tid).status == Status.NEW  # type: ignore[arg-type,union-attr]


def _worker_process(config: Path) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "omnidesk.pipeline",
        "--config",
        str(config),
        "--threads",
        "2",
        "--heartbeat-timeout-ms",
        "2000",
        "--maintenance-chance",
        "1000000",
    ]
    return subprocess.Popen(args, cwd=ROOT)


@pytest.mark.slow
def test_worker_killed_mid_batch_loses_and_duplicates_nothing(
    runtime: Runtime, prefix: str, tmp_path: Path
) -> None:
    n = 1200
    raws = [web(f"complaint {i}", email=f"k{i}@example.sa") for i in range(n)]
    broker = make_broker(REDIS_URL, prefix)
    asyncio.run(Pipeline(runtime, broker).handover(raws, batch_size=100))
    broker.close()
    config = write_config(prefix, tmp_path / "state", tmp_path / "config.yaml")
    store = runtime.store
    first = _worker_process(config)
    try:
        assert wait_for(lambda: store.ticket_count() > 0, timeout=30, every=0.01)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    at_kill = store.ticket_count()
    assert 0 < at_kill < n  # killed in the middle of the work
    second = _worker_process(config)
    try:
        assert wait_for(lambda: store.ticket_count() >= n, timeout=60, every=0.2)
        time.sleep(1.0)  # any stray redelivery would show up as a duplicate now
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    tickets = store.list_tickets(limit=2 * n)
    assert len(tickets) == n
    assert sorted(t.preview for t in tickets) == sorted(f"complaint {i}" for i in range(n))
    assert all(len(t.message_ids) == 1 for t in tickets)
    # a worker process starts the SLA clocks too: every ticket has them, whoever opened it
    from omnidesk.sla.engine import SlaClocks

    clocks = SlaClocks(store, runtime.config.data)  # type: ignore[union-attr]
    assert all(clocks.summary(t.id) for t in tickets)
