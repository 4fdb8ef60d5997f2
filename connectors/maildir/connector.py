"""A drop-folder connector: picks up payload files and moves each to `cur/` only
after it has been handed over, so a crash or a Redis outage loses nothing.

Files go in `<path>/new/` (or straight in `<path>/`); the name tells the channel:
`.eml` is email, `.<channel>.json` is that channel (`x.telegram.json`, `y.web.json`).
`new/`, `cur/` and `tmp/` are made at start-up, and `new/` again whenever it is gone, so a
writer always finds it and a `new/` removed and made again is read without a restart.

Writers follow the maildir convention: write in `<path>/tmp/` (or under a name starting
with `.` or ending in `.tmp`) and rename into `new/` when done. A file written in place is
still taken only once complete: its size and mtime must be the same at two looks and it
must have been left alone for `settle_seconds`. A file over `max_file_bytes` is never read
whole: it is moved to `rejected/` with a note of its size and sha256, and the folder goes on.
A file that cannot be read (permissions, an I/O error) is skipped and moved to `rejected/`
with a note of the error; one that cannot be moved either is tried again at the next scans,
and after `UNREADABLE_TRIES` failures left in place, skipped until it changes. The rest of
the batch goes on either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field

from connectors.base import Connector, Sink
from omnidesk.errors import TransientError
from omnidesk.model import Channel, Outbound, RawPayload, Receipt

log = logging.getLogger("omnidesk.connectors.maildir")

SUFFIXES: dict[str, Channel] = {".eml": Channel.EMAIL} | {f".{c.value}.json": c for c in Channel}
MiB = 1024 * 1024
HASH_CHUNK = MiB  # a rejected file is hashed in chunks, never held whole
# The process's or the system's trouble, not the file's: the file is tried on the next scan.
PASSING_ERRNOS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN, errno.EINTR, errno.ENOBUFS,
     errno.ESTALE, errno.ETIMEDOUT}
)  # fmt: skip
UNREADABLE_TRIES = 3  # scans an unreadable file that cannot be moved aside is tried again


class MaildirConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["maildir"] = "maildir"
    path: str
    poll_interval: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=100, ge=1, le=1000)
    # A file over this goes to rejected/ unread; the same cap as limits.max_raw_bytes.
    max_file_bytes: int = Field(default=25 * MiB, ge=1)
    # Bytes read into memory per hand-over; a single file larger than this goes alone.
    max_batch_bytes: int = Field(default=8 * MiB, ge=1)
    # A file is taken once its size and mtime held still this long (and across two looks).
    settle_seconds: float = Field(default=1.0, ge=0)
    # Replies and receipts to the tickets this folder's files opened are written as JSON to
    # <path>/outbox/ for whatever feeds the folder to send; off, nothing here can send them.
    outbox: bool = False


def channel_of(path: Path) -> Channel | None:
    name = path.name.lower()
    for suffix, channel in SUFFIXES.items():
        if name.endswith(suffix):
            return channel
    return None


@dataclass(frozen=True)
class Look:
    """What one scan saw of a file; a change between two scans means it is still written."""

    size: int
    mtime_ns: int
    since: float  # time.monotonic() when this size and mtime were first seen

    @property
    def stamp(self) -> tuple[int, int]:
        return self.size, self.mtime_ns


@dataclass(frozen=True)
class Waiting:
    """A complete file in the backlog, with the size and mtime it was found complete at."""

    path: Path
    size: int
    mtime_ns: int

    @property
    def stamp(self) -> tuple[int, int]:
        return self.size, self.mtime_ns


class MaildirConnector(Connector):
    kind = "maildir"
    config_model = MaildirConfig

    def __init__(self, config: MaildirConfig, cursors: Any = None, lease: Any = None) -> None:
        # The folder itself is the cursor: a file leaves new/ once handed over.
        super().__init__(config.name, lease=lease)
        self.config = config
        self.root = Path(config.path)
        self.incoming = self.root / "new"
        self.done = self.root / "cur"
        self.rejected = self.root / "rejected"
        self._looks: dict[str, Look] = {}  # by path: new/x and x are two files
        # One listing feeds every batch until it is drained, so a backlog of n files costs
        # one scan per pass, not one per batch.
        self._backlog: deque[Waiting] = deque()
        self._rejections: deque[str] = deque()  # reasons, counted on the event loop
        # unreadable files that could not be moved aside: path -> (stamp, failures)
        self._unreadable: dict[str, tuple[tuple[int, int], int]] = {}

    async def initialize(self) -> None:
        if not self.root.is_dir():
            from omnidesk.errors import PermanentError

            raise PermanentError(f"connector {self.name}: path: no such folder {self.root}")
        for sub in (self.incoming, self.done, self.root / "tmp"):  # the maildir convention
            sub.mkdir(exist_ok=True)
        if self.config.outbox:
            self.outbox.mkdir(exist_ok=True)

    # ------------------------------------------------------------ replies

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def reply_channels(self) -> tuple[Channel, ...]:
        """With an outbox, this folder answers on every channel its files come in on."""
        return tuple(Channel) if self.config.outbox else ()

    async def send(self, reply: Outbound) -> Receipt:
        """The reply as `<outbox>/<message id>.json` (the Outbound as JSON: channel, to,
        subject, text, threading), written in tmp/ and renamed in, so a reader never sees
        half a file; a disk error is transient (deliver tries again)."""
        (outcome,) = await self.send_many([reply])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def send_many(self, replies: list[Outbound]) -> list[Receipt | Exception]:
        """`send` for a batch (a batch's receipts): every file in one thread hop, not one
        hop per message (measured: 77 us of CPU each). Each one's receipt or error."""
        files = [(reply.id, msgspec.json.encode(reply)) for reply in replies]
        failures = await asyncio.to_thread(self._write_outbox, files)
        outcomes: list[Receipt | Exception] = []
        for reply, error in zip(replies, failures, strict=True):
            if error is None:
                outcomes.append(Receipt(outbound_id=reply.id, status="sent", detail="outbox"))
            else:
                failed = TransientError(f"connector {self.name}: outbox: {error}")
                failed.__cause__ = error
                outcomes.append(failed)
        return outcomes

    def _write_outbox(self, files: list[tuple[str, bytes]]) -> list[OSError | None]:
        """Write each (message id, data); each one's disk error, or None (a half-written
        file is not left in tmp/)."""
        failures: list[OSError | None] = []
        for message_id, data in files:
            tmp = self.root / "tmp" / f".outbox-{message_id}"
            try:
                tmp.write_bytes(data)
                os.replace(tmp, self.outbox / f"{message_id}.json")
            except OSError as exc:
                failures.append(exc)
                with contextlib.suppress(OSError):
                    tmp.unlink()
            else:
                failures.append(None)
        return failures

    # ------------------------------------------------------------ finding complete files

    def scan(self) -> list[Waiting]:
        """Complete files waiting, oldest first. Hidden and `.tmp` files are partial by
        name; any other file is complete when it looks the same as at the previous scan
        and has not changed for `settle_seconds`."""
        now, mono = time.time(), time.monotonic()
        looks: dict[str, Look] = {}
        ready: list[Waiting] = []
        for path, st in self._listing():
            before = self._looks.get(str(path))
            unchanged = before is not None and before.stamp == (st.st_size, st.st_mtime_ns)
            look = before if unchanged and before else Look(st.st_size, st.st_mtime_ns, mono)
            looks[str(path)] = look
            if unchanged and self._settled(look, st.st_mtime, now, mono):
                waiting = Waiting(path, st.st_size, st.st_mtime_ns)
                if not self._given_up(waiting):
                    ready.append(waiting)
        self._looks = looks  # files gone since are forgotten
        self._unreadable = {n: v for n, v in self._unreadable.items() if n in looks}
        ready.sort(key=lambda w: (w.mtime_ns, w.path.name))
        return ready

    def _listing(self) -> Iterator[tuple[Path, os.stat_result]]:
        """The files in `new/` and in the folder itself with their stat, one read of each.
        A `new/` that is gone is made again: writers rename into it."""
        for folder in (self.incoming, self.root):
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.name.startswith(".") or entry.name.endswith(".tmp"):
                            continue
                        try:
                            if entry.is_file():
                                yield Path(entry.path), entry.stat()
                        except FileNotFoundError:  # taken or renamed meanwhile
                            continue
            except FileNotFoundError:
                if folder is not self.incoming:
                    raise
                log.warning("connector %s: %s is gone; made again", self.name, folder)
                with contextlib.suppress(FileNotFoundError):  # the whole folder is gone
                    folder.mkdir(exist_ok=True)

    def _given_up(self, waiting: Waiting) -> bool:
        """An unreadable file that could not be moved aside `UNREADABLE_TRIES` times, and
        has not changed since: it stays where it is, unread, until someone fixes it."""
        stamp, failures = self._unreadable.get(str(waiting.path), (None, 0))
        return stamp == waiting.stamp and failures >= UNREADABLE_TRIES

    def _settled(self, look: Look, mtime: float, now: float, mono: float) -> bool:
        """Left alone for `settle_seconds`: by its mtime, or by our own clock when the
        mtime is in the future (a skewed NFS server, a copy that kept its timestamps)."""
        settle = self.config.settle_seconds
        return now - mtime >= settle or mono - look.since >= settle

    # ------------------------------------------------------------ the pass

    async def run_once(self, sink: Sink) -> float | None:
        if not self._backlog:
            self._backlog.extend(await asyncio.to_thread(self.scan))
        if not self._backlog:
            return self.config.poll_interval
        batch = await asyncio.to_thread(self._next_batch)
        while self._rejections:  # /healthz and /metrics read these dicts on this loop
            reason = self._rejections.popleft()
            self.status.errors[reason] = self.status.errors.get(reason, 0) + 1
        if batch:
            self.status.received += len(batch)
            try:
                await sink([item for _, item in batch])  # raises on failure: files stay put
            except BaseException:
                self._backlog.clear()  # rescan, so the failed files keep their turn
                raise
            self.status.handed_over += len(batch)
            await asyncio.to_thread(self._archive, [path for path, _ in batch])
        return None if self._backlog else self.config.poll_interval

    def _next_batch(self) -> list[tuple[Path, RawPayload]]:
        """Read the next files of the backlog: at most `batch_size` of them and, unless
        one file alone is larger, at most `max_batch_bytes`."""
        batch: list[tuple[Path, RawPayload]] = []
        total = 0
        while self._backlog and len(batch) < self.config.batch_size:
            waiting = self._backlog[0]
            if batch and total + waiting.size > self.config.max_batch_bytes:
                break
            self._backlog.popleft()
            item = self._take(waiting)
            if item is not None:
                batch.append((waiting.path, item))
                total += len(item.payload)
        return batch

    def _take(self, waiting: Waiting) -> RawPayload | None:
        """The file's payload; None when it went to rejected/, is gone, or changed since
        it was found complete (it is looked at again on a later scan)."""
        path = waiting.path
        if waiting.size > self.config.max_file_bytes:
            self._reject(waiting, "too_large")
            return None
        try:
            with path.open("rb") as f:
                st = os.fstat(f.fileno())
                data = f.read(self.config.max_file_bytes + 1)
        except FileNotFoundError:  # another daemon took it
            return None
        except OSError as exc:  # permissions, an I/O error: this file's trouble, not the batch's
            if exc.errno in PASSING_ERRNOS:  # out of descriptors or memory: the next scan
                log.warning("connector %s: %s not read now: %s", self.name, path.name, exc)
                return None
            self._unreadable_file(waiting, exc)
            return None
        self._unreadable.pop(str(path), None)
        if (st.st_size, st.st_mtime_ns) != waiting.stamp or len(data) != st.st_size:
            self._looks.pop(str(path), None)  # written to again: it has to settle anew
            log.info("connector %s: %s changed while read; left for later", self.name, path.name)
            return None
        channel = channel_of(path)
        # Unknown names still go through: the quarantine keeps them.
        return RawPayload(
            channel=channel or Channel.WEB,
            account=self.name,
            payload=data,
            received_at=datetime.fromtimestamp(st.st_mtime, UTC),
            source=f"maildir:{path.name}" + ("" if channel else ":unknown-channel"),
        )

    # ------------------------------------------------------------ where files go

    def _unreadable_file(self, waiting: Waiting, exc: OSError) -> None:
        """Count an unreadable file and move it aside; if it cannot be moved, note the
        failure (after `UNREADABLE_TRIES` of them, scans skip it until it changes)."""
        name, key = waiting.path.name, str(waiting.path)
        self._rejections.append("unreadable")
        log.warning("connector %s: %s unreadable: %s; skipped", self.name, name, exc)
        if self._reject(waiting, "unreadable", error=f"{type(exc).__name__}: {exc}"):
            self._unreadable.pop(key, None)
            return
        stamp, failures = self._unreadable.get(key, (waiting.stamp, 0))
        failures = failures + 1 if stamp == waiting.stamp else 1
        self._unreadable[key] = (waiting.stamp, failures)
        if failures >= UNREADABLE_TRIES:
            log.error(
                "connector %s: %s unreadable %d times and cannot be moved to %s; left in "
                "place, skipped until it changes",
                self.name, name, failures, self.rejected,
            )  # fmt: skip

    def _reject(self, waiting: Waiting, reason: str, error: str | None = None) -> bool:
        """Move a file aside to rejected/ with a `.rejected.json` note (reason, size,
        sha256 when it can be read, the error), count it, and log one line; its bytes stay
        on disk, never in Redis. Whether it was moved."""
        path = waiting.path
        try:
            digest: str | None = _sha256_of(path)
        except FileNotFoundError:
            return False
        except OSError:
            digest = None  # unreadable: the note says why instead
        try:
            self.rejected.mkdir(exist_ok=True)
            target = _free_name(self.rejected / path.name)
            os.replace(path, target)
        except OSError as exc:
            log.warning(
                "connector %s: %s cannot go to %s: %s", self.name, path.name, self.rejected, exc
            )
            return False
        note: dict[str, Any] = {
            "reason": reason,
            "file": path.name,
            "size": waiting.size,
            "sha256": digest,
            "max_file_bytes": self.config.max_file_bytes,
            "rejected_at": datetime.now(UTC).isoformat(),
        }
        if error is not None:
            note["error"] = error
        try:
            target.with_name(target.name + ".rejected.json").write_text(json.dumps(note), "utf-8")
        except OSError as exc:  # the file is aside all the same; the log line has the note
            log.warning("connector %s: note for %s not written: %s", self.name, target, exc)
        if reason != "unreadable":  # an unreadable file was counted when it failed
            self._rejections.append(reason)
        why = f"over max_file_bytes {self.config.max_file_bytes}" if error is None else error
        log.warning(
            "connector %s: %s rejected (%s): %d bytes, %s; sha256 %s; moved to %s",
            self.name, path.name, reason, waiting.size, why, digest, target,
        )  # fmt: skip
        return True

    def _archive(self, paths: list[Path]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, self.done / path.name)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _free_name(target: Path) -> Path:
    """`target`, or `target.1`, `target.2`... so a rejected file never replaces another."""
    candidate, n = target, 0
    while candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.name}.{n}")
    return candidate
