"""Content-addressed archive of every raw payload, so a ticket can always show its original.

A payload lives at ``<state_dir>/raw/ab/<sha256>`` (ab: its first two hex digits), so a
new archive makes 256 folders in all, not one for nearly every payload of its first tens of
thousands (the folder creation was a third of a worker's time on a new install). Payloads an
older version stored at ``raw/ab/cd/<sha256>`` are still found there.
Writes are atomic (temp file + rename), and writing the same content twice is a no-op.
`Inbound.raw_ref` is the sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import threading
import time
from pathlib import Path

from omnidesk.errors import TransientError

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL


class Archive:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.root = Path(state_dir) / "raw"
        self._root = str(self.root)
        self._seq = itertools.count()

    def path(self, sha256: str) -> Path:
        """Where the payload is (or goes): ``raw/ab/<sha256>``, or the older layout's
        ``raw/ab/cd/<sha256>`` when it is there."""
        current, legacy = self.paths(sha256)
        return legacy if not current.exists() and legacy.exists() else current

    def paths(self, sha256: str) -> tuple[Path, Path]:
        """Both places a payload may be: this layout's and the older one's (erasure removes
        both)."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256[:80]!r}")
        return self.root / sha256[:2] / sha256, self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, payload: bytes) -> str:
        """Store the payload; returns its sha256. A disk error is transient (retry later).

        On the ingest hot path, so plain os calls, and no look for the fan-out folder: it
        is made only when the write finds it missing (once per folder, ever)."""
        digest = hashlib.sha256(payload).hexdigest()
        folder = f"{self._root}/{digest[:2]}"
        target = f"{folder}/{digest}"
        # unique per process and thread; O_EXCL refuses a stale leftover
        tmp = f"{folder}/.tmp-{os.getpid()}-{threading.get_ident()}-{next(self._seq)}"
        try:
            legacy = f"{folder}/{digest[2:4]}/{digest}"  # where an older version put it
            if os.path.exists(target) or os.path.exists(legacy):  # the same content, stored
                return digest
            try:
                fd = os.open(tmp, _CREATE, 0o644)
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
                fd = os.open(tmp, _CREATE, 0o644)
            try:
                _write_all(fd, payload)
            finally:
                os.close(fd)
            # a racing writer of the same content is harmless: same bytes, atomic rename
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise TransientError(f"archive: cannot write {target}: {exc}") from None
        return digest

    def get(self, sha256: str) -> bytes | None:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def prune(self, retention_days: float, *, now: float | None = None) -> int:
        """Delete payloads older than the retention (by file mtime); returns how many."""
        cutoff = (now if now is not None else time.time()) - retention_days * 86400
        removed = 0
        if not self.root.exists():
            return 0
        for path in [*self.root.glob("*/*"), *self.root.glob("*/*/*")]:  # and the old layout
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
