"""The drop folder on real files and the real pipeline (real Redis): files over
`max_file_bytes` go to rejected/ unread, files still being written or waiting in tmp/ are
not taken, one listing feeds every batch of a backlog, and no `ingest` message goes over
the byte cap."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import dramatiq
import msgspec
import pytest
import redis

from connectors.maildir import MaildirConfig, MaildirConnector
from omnidesk.model import RawPayload
from omnidesk.pipeline import Pipeline, make_broker
from omnidesk.runtime import Runtime
from tests.services import eventually
from tests.storekit import REDIS_URL, config_for, web

KiB = 1024


class Handed:
    """The real pipeline's hand-over, noting what each call carried."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.calls: list[list[RawPayload]] = []

    async def __call__(self, items: list[RawPayload]) -> None:
        await self.pipeline.handover(items)
        self.calls.append(items)

    def sources(self) -> list[str]:
        return [item.source for call in self.calls for item in call]


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    root = tmp_path / "drop"
    for sub in ("tmp", "new"):
        (root / sub).mkdir(parents=True)
    return root


@pytest.fixture
async def connector(drop: Path, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    options = getattr(request, "param", {})
    async with MaildirConnector(MaildirConfig(name="drop", path=str(drop), **options)) as conn:
        yield conn


def form(name: str, message: str) -> bytes:
    return json.dumps({"message": message, "email": f"{name}@example.sa"}).encode()


def dropped(path: Path, data: bytes, age: float = 60.0) -> Path:
    """A file as a writer left it `age` seconds ago (rename keeps the mtime)."""
    path.write_bytes(data)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


async def passes(conn: MaildirConnector, sink: Handed, n: int) -> None:
    """Run `n` passes of the connector, as its loop would (without the waits)."""
    for _ in range(n):
        await conn.run_once(sink)


async def drain(conn: MaildirConnector, sink: Handed, limit: int = 50) -> None:
    """Passes until new/ is empty (a bounded number, so a file never taken fails the test)."""
    for _ in range(limit):
        if not any(conn.incoming.iterdir()):
            return
        await conn.run_once(sink)
    raise AssertionError(f"new/ still holds {sorted(p.name for p in conn.incoming.iterdir())}")


# ---------------------------------------------------------------- max_file_bytes


@pytest.mark.parametrize("connector", [{"max_file_bytes": 64 * KiB}], indirect=True)
async def test_a_file_over_max_file_bytes_goes_aside_and_the_folder_goes_on(
    connector: MaildirConnector,
    pipeline: Pipeline,
    worker: dramatiq.Worker,
    drop: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    big = form("big", "x" * (200 * KiB))
    digest = hashlib.sha256(big).hexdigest()
    dropped(drop / "new" / "a.web.json", form("a", "first complaint"), age=30)
    dropped(drop / "new" / "big.web.json", big, age=20)
    dropped(drop / "new" / "c.web.json", form("c", "third complaint"), age=10)
    sink = Handed(pipeline)
    with caplog.at_level(logging.WARNING, logger="omnidesk.connectors.maildir"):
        await drain(connector, sink)

    assert sorted(p.name for p in (drop / "cur").iterdir()) == ["a.web.json", "c.web.json"]
    assert not any("big" in source for source in sink.sources())  # never read into Redis
    kept = drop / "rejected" / "big.web.json"
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == digest  # the raw bytes, on disk
    note = json.loads((drop / "rejected" / "big.web.json.rejected.json").read_text("utf-8"))
    assert note["reason"] == "too_large" and note["size"] == len(big)
    assert note["sha256"] == digest
    assert connector.status.errors["too_large"] == 1
    [line] = [r.getMessage() for r in caplog.records if "too_large" in r.getMessage()]
    assert "big.web.json" in line and digest in line and str(len(big)) in line

    store = pipeline.runtime.store
    assert await eventually(lambda: store.ticket_count() == 2, timeout=20)
    assert store.counts()["quarantine"] == 0


@pytest.mark.parametrize("connector", [{"max_batch_bytes": 256 * KiB}], indirect=True)
async def test_a_hand_over_reads_at_most_max_batch_bytes(
    connector: MaildirConnector, pipeline: Pipeline, drop: Path
) -> None:
    for i in range(8):
        dropped(drop / "new" / f"m{i}.web.json", form(f"m{i}", f"{i} " + "y" * (100 * KiB)))
    sink = Handed(pipeline)
    await drain(connector, sink)
    assert sorted(sink.sources()) == sorted(f"maildir:m{i}.web.json" for i in range(8))
    assert all(sum(len(item.payload) for item in call) <= 256 * KiB for call in sink.calls)
    assert len(sink.calls) == 4


# ---------------------------------------------------------------- files still being written


async def test_a_file_written_in_place_is_taken_only_once_complete(
    connector: MaildirConnector, pipeline: Pipeline, worker: dramatiq.Worker, drop: Path
) -> None:
    path = drop / "new" / "slow.web.json"
    body = form("slow", "شكوى طويلة " * 400 + "END-OF-COMPLAINT")
    parts = [body[:100], body[100:2000], body[2000:]]
    sink = Handed(pipeline)
    with path.open("wb") as writer:
        for part in parts:
            writer.write(part)
            writer.flush()
            await connector.run_once(sink)  # the size changed since the last look
            assert path.exists() and sink.calls == []
    deadline = time.monotonic() + 30
    while path.exists() and time.monotonic() < deadline:  # taken once it has held still
        await connector.run_once(sink)
        await asyncio.sleep(0.05)
    assert [[item.payload for item in call] for call in sink.calls] == [[body]]
    store = pipeline.runtime.store
    assert await eventually(lambda: store.ticket_count() == 1, timeout=20)
    [ticket] = store.list_tickets()
    [message] = store.ticket_messages(ticket.id)
    assert message.text.endswith("END-OF-COMPLAINT")


async def test_a_file_in_tmp_is_never_taken_until_renamed_into_new(
    connector: MaildirConnector, pipeline: Pipeline, drop: Path
) -> None:
    writing = dropped(drop / "tmp" / "t.web.json", form("t", "written in tmp"))
    sink = Handed(pipeline)
    await passes(connector, sink, 5)
    assert writing.exists() and sink.calls == []
    writing.rename(drop / "new" / "t.web.json")
    await drain(connector, sink)
    assert sink.sources() == ["maildir:t.web.json"]


# ---------------------------------------------------------------- one listing per pass


@pytest.mark.parametrize("connector", [{"batch_size": 10}], indirect=True)
async def test_one_listing_feeds_every_batch_of_a_backlog(
    connector: MaildirConnector, pipeline: Pipeline, drop: Path
) -> None:
    for i in range(300):
        dropped(drop / "new" / f"b{i:03d}.web.json", form(f"b{i}", f"backlog {i}"), age=300 - i)
    listings = 0
    scan = connector.scan

    def counted_scan() -> Any:
        nonlocal listings
        listings += 1
        return scan()

    connector.scan = counted_scan  # type: ignore[method-assign]
    sink = Handed(pipeline)
    await drain(connector, sink, limit=100)
    assert len(sink.calls) == 30
    assert sink.sources() == [f"maildir:b{i:03d}.web.json" for i in range(300)]  # oldest first
    assert listings <= 3  # two looks, then the whole backlog; not one listing per batch


# ---------------------------------------------------------------- ingest messages by bytes


def queued_batches(prefix: str) -> list[str]:
    """The `ingest` messages waiting in Redis: the JSON batch each one carries."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        raw = client.hvals(f"{prefix}:dramatiq:ingest.msgs")
    finally:
        client.close()
    return [json.loads(message)["args"][0] for message in raw]


def test_a_batch_of_big_payloads_is_split_under_the_byte_cap(
    runtime: Runtime, prefix: str, tmp_path: Path
) -> None:
    loaded = config_for(prefix, tmp_path / "state")
    limits = loaded.data.limits.model_copy(update={"max_batch_bytes": 1024 * KiB})
    runtime.config = replace(loaded, data=loaded.data.model_copy(update={"limits": limits}))
    raws = [web(f"{i} " + "z" * (300 * KiB), email=f"z{i}@example.sa") for i in range(12)]
    raws.append(web("huge " + "h" * (1500 * KiB), email="huge@example.sa"))
    broker = make_broker(REDIS_URL, prefix)
    try:
        Pipeline(runtime, broker).handover_sync(raws)  # batch_size 100: count alone is one
    finally:
        broker.close()
    batches = queued_batches(prefix)
    queued = sorted(item["payload"] for batch in batches for item in json.loads(batch))
    sent = sorted(item["payload"] for item in json.loads(msgspec.json.encode(raws)))
    assert queued == sent  # every payload, once
    over = [batch for batch in batches if len(batch) > 1024 * KiB]
    assert [len(json.loads(batch)) for batch in over] == [1]  # the huge one, alone
    assert len(batches) == 7  # 12 payloads of ~410 KB in base64, two to a message, and it


# ---------------------------------------------------------------- unreadable files


@pytest.mark.parametrize("connector", [{"settle_seconds": 0}], indirect=True)
async def test_a_file_not_read_for_want_of_descriptors_waits_for_the_next_scan(
    connector: MaildirConnector,
    pipeline: Pipeline,
    drop: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EMFILE is the process's trouble, not the file's: the complaint is not put aside."""
    path = dropped(drop / "new" / "a.web.json", form("a", "a complaint"), age=30)
    real_open = Path.open

    def out_of_descriptors(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(self, *args, **kwargs)

    sink = Handed(pipeline)
    monkeypatch.setattr(Path, "open", out_of_descriptors)
    await passes(connector, sink, 2)
    assert path.exists() and not (drop / "rejected").exists()
    monkeypatch.setattr(Path, "open", real_open)
    await drain(connector, sink)
    assert sink.sources() == ["maildir:a.web.json"]


# /proc/self/mem's mtime is when this process first looked it up, which may be less than the
# default settle time ago in a fresh test process: the settle wait is not what is tested here.
@pytest.mark.parametrize("connector", [{"settle_seconds": 0}], indirect=True)
async def test_an_unreadable_file_goes_aside_and_the_rest_of_its_batch_goes_on(
    connector: MaildirConnector, pipeline: Pipeline, drop: Path
) -> None:
    dropped(drop / "new" / "a.web.json", form("a", "first complaint"), age=30)
    # a regular file whose read fails with EIO, even for root: an I/O error on a bad disk
    os.symlink("/proc/self/mem", drop / "new" / "b.web.json")
    dropped(drop / "new" / "c.web.json", form("c", "third complaint"), age=10)
    sink = Handed(pipeline)
    await drain(connector, sink)

    assert sorted(p.name for p in (drop / "cur").iterdir()) == ["a.web.json", "c.web.json"]
    assert len(sink.calls) == 1 and len(sink.calls[0]) == 2  # one hand-over, both others
    assert os.readlink(drop / "rejected" / "b.web.json") == "/proc/self/mem"  # kept as it was
    note = json.loads((drop / "rejected" / "b.web.json.rejected.json").read_text("utf-8"))
    assert note["reason"] == "unreadable" and "Errno 5" in note["error"]
    assert note["sha256"] is None
    assert connector.status.errors["unreadable"] == 1
