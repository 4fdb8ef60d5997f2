"""Content-addressed archive of every raw payload, so a ticket can always show its original.

A payload lives at ``<state_dir>/raw/ab/cd/<sha256>`` (ab, cd: the first hex digits).
Writes are atomic (temp file + rename), and writing the same content twice is a no-op.
`Inbound.raw_ref` is the sha256.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from omnidesk.errors import TransientError


class Archive:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.root = Path(state_dir) / "raw"

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256[:80]!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, payload: bytes) -> str:
        """Store the payload; returns its sha256. A disk error is transient (retry later)."""
        digest = hashlib.sha256(payload).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
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
        for path in self.root.glob("*/*/*"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
