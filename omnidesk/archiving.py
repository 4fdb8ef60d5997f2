"""The old ticket archive: monthly gzip JSON lines, read only.

Before PostgreSQL became the system of record, closed tickets moved out of Redis into
``<state_dir>/archive/YYYY-MM.jsonl.gz``, one JSON object per line: {"ticket": {...},
"messages": [...], "customer": {...}, "sla": {...}, "archived_at"}. Nothing writes these
files any more (done tickets leave Redis by eviction, omnidesk.db.evict, once PostgreSQL
holds them); `records()` reads them for `omnidesk db import-archive`, and `prune` deletes
months past the retention.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO


class TicketArchive:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.root = Path(state_dir) / "archive"

    def months(self) -> list[Path]:
        return sorted(self.root.glob("*.jsonl.gz")) if self.root.exists() else []

    def records(self) -> Iterator[dict[str, Any]]:
        for path in self.months():
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield json.loads(line)

    def prune(self, retention_days: int, now: datetime | None = None) -> list[Path]:
        """Delete month files whose month ended more than `retention_days` ago."""
        now = now or datetime.now(UTC)
        removed = []
        for path in self.months():
            month = datetime.strptime(path.name[:7], "%Y-%m").replace(tzinfo=UTC)
            month_end = (month + timedelta(days=32)).replace(day=1)
            if now - month_end > timedelta(days=retention_days):
                path.unlink()
                removed.append(path)
        return removed


@contextmanager
def locked_month(path: Path) -> Iterator[BinaryIO]:
    """The month file open for appending under its exclusive lock. An erasure rewrites a
    month by renaming a new file over it while holding the lock: a writer that waited for
    the lock on the old file opens the path again rather than append to a file now gone."""
    while True:
        fh = open(path, "ab")  # noqa: SIM115 - closed below or by the caller's with
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            if os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        except BaseException:
            fh.close()
            raise
        fh.close()
    with fh:
        yield fh
