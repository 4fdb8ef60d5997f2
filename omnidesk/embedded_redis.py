"""A private redis-server child for `--embedded-redis`: unix socket and append-only
file in the state directory, supervised, stopped on exit."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from omnidesk.errors import PermanentError, StoreUnavailable


class EmbeddedRedis:
    def __init__(self, state_dir: Path) -> None:
        self.dir = (state_dir / "redis").resolve()
        self.socket = self.dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def start(self, timeout: float = 10.0) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise PermanentError(
                "--embedded-redis: no redis-server binary on PATH "
                "(install the redis-server package)"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--logfile",
                str(self.dir / "redis.log"),
                # tickets' and messages' hashes stay compact listpacks with text values
                # (see omnidesk.store.LISTPACK_VALUE)
                "--hash-max-listpack-value",
                "1024",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.process.poll() is not None:
                raise StoreUnavailable(
                    f"embedded redis-server exited with {self.process.returncode}"
                    f"; see {self.dir / 'redis.log'}"
                )
            if self.socket.exists():
                return self.url
            await asyncio.sleep(0.05)
        raise StoreUnavailable("embedded redis-server did not start in time")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
