"""A drop-folder connector: picks up payload files and moves each to `cur/` only
after it has been handed over, so a crash or a Redis outage loses nothing.

Files go in `<path>/new/` (or straight in `<path>/`); the name tells the channel:
`.eml` is email, `.<channel>.json` is that channel (`x.telegram.json`, `y.web.json`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import Connector, Sink
from omnidesk.model import Channel, RawPayload

SUFFIXES: dict[str, Channel] = {".eml": Channel.EMAIL} | {f".{c.value}.json": c for c in Channel}


class MaildirConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["maildir"] = "maildir"
    path: str
    poll_interval: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=100, ge=1, le=1000)
    max_file_bytes: int = 25 * 1024 * 1024


def channel_of(path: Path) -> Channel | None:
    name = path.name.lower()
    for suffix, channel in SUFFIXES.items():
        if name.endswith(suffix):
            return channel
    return None


class MaildirConnector(Connector):
    kind = "maildir"
    config_model = MaildirConfig

    def __init__(self, config: MaildirConfig, cursors: Any = None, lease: Any = None) -> None:
        # The folder itself is the cursor: a file leaves new/ once handed over.
        super().__init__(config.name, lease=lease)
        self.config = config
        self.root = Path(config.path)
        self.incoming = self.root / "new" if (self.root / "new").is_dir() else self.root
        self.done = self.root / "cur"
        self.rejected = self.root / "rejected"

    async def initialize(self) -> None:
        if not self.root.is_dir():
            from omnidesk.errors import PermanentError

            raise PermanentError(f"connector {self.name}: path: no such folder {self.root}")
        self.done.mkdir(exist_ok=True)

    def pending(self) -> list[Path]:
        """Files waiting, oldest first; hidden and partial files (.tmp) are left alone."""
        files = [
            p
            for p in self.incoming.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".tmp")
        ]
        return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))

    async def run_once(self, sink: Sink) -> float | None:
        files = await asyncio.to_thread(self.pending)
        if not files:
            return self.config.poll_interval
        batch: list[tuple[Path, RawPayload]] = []
        for path in files[: self.config.batch_size]:
            item = await asyncio.to_thread(self._read, path)
            if item is not None:
                batch.append((path, item))
        if batch:
            self.status.received += len(batch)
            await sink([item for _, item in batch])  # raises on failure: files stay in place
            self.status.handed_over += len(batch)
            await asyncio.to_thread(self._archive, [path for path, _ in batch])
        return None if len(files) > self.config.batch_size else self.config.poll_interval

    def _read(self, path: Path) -> RawPayload | None:
        channel = channel_of(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # another daemon took it
            return None
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC) if path.exists() else None
        # Unknown names and oversized files still go through: the quarantine keeps them.
        return RawPayload(
            channel=channel or Channel.WEB,
            account=self.name,
            payload=data,
            received_at=mtime or datetime.now(UTC),
            source=f"maildir:{path.name}" + ("" if channel else ":unknown-channel"),
        )

    def _archive(self, paths: list[Path]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, self.done / path.name)
