"""The records writer of an `omnidesk worker`, in a process of its own: one more consumer of
the `records` group (omnidesk.db.writer), so writing PostgreSQL scales with the workers.

Why a process and not a thread of the worker: the worker's ingest threads keep its GIL busy,
and the writer, which waits on Redis or PostgreSQL some twenty times a batch, had to win the
GIL back from them after each wait. Timed through a burst of 12,000 payloads with 2 workers,
the writers fell behind by half the events, and PostgreSQL's last row came 0.9-2.7 s after
the last ticket in Redis; as processes, 0.25-0.53 s.

    python -m omnidesk.writer_process [--config FILE] --parent PID [--log-level INFO]

It stops on SIGTERM or SIGINT after the batch in hand (acknowledged only once written), and
by itself once it sees its worker gone (it looks every second), however that went (even
SIGKILL): a writer is never left behind. Whatever it leaves pending is claimed by another
consumer. A writer that exits on its own (killed, out of memory) is logged and started again
by its worker, after 1 s, then up to a minute while it keeps failing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from omnidesk.configload import load_config
from omnidesk.db.connect import conninfo
from omnidesk.db.writer import RecordWriter
from omnidesk.logs import setup_json_logging
from omnidesk.store import Store

log = logging.getLogger("omnidesk.records")

PARENT_CHECK_S = 1.0
STOP_TIMEOUT_S = 30.0
RESTART_MIN_S, RESTART_MAX_S = 1.0, 60.0


class WriterProcess:
    """The worker's handle on its writer process, which a thread of the worker watches and
    starts again if it exits on its own."""

    def __init__(self, config: str | None) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a stop and a restart never cross
        self._watch = threading.Thread(target=self._keep_running, name="records-writer-watch",
                                       daemon=True)  # fmt: skip

    def start(self) -> None:
        self._spawn()
        self._watch.start()

    def _spawn(self) -> None:
        level = logging.getLogger().getEffectiveLevel()
        args = [sys.executable, "-m", "omnidesk.writer_process", "--parent", str(os.getpid())]
        args += ["--log-level", str(level)]
        if self.config:
            args += ["--config", self.config]
        self.proc = subprocess.Popen(args)

    def _keep_running(self) -> None:
        delay = RESTART_MIN_S
        while self.proc is not None:
            started = time.monotonic()
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > RESTART_MAX_S:
                delay = RESTART_MIN_S  # it had run a while: not a crash loop
            log.error("records writer %d exited (%s); starting it again in %.0f s",
                      self.proc.pid, code, delay)  # fmt: skip
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._spawn()
            delay = min(delay * 2, RESTART_MAX_S)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Let it finish the batch in hand, then end; killed if it has not within `timeout`."""
        with self._lock:
            self._stopping.set()
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("records writer %d did not stop within %.0f s; killed", proc.pid, timeout)
            proc.kill()
            proc.wait()


async def _run(writer: RecordWriter, parent: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def watch_parent() -> None:
        while not stop.is_set():
            if os.getppid() != parent:  # the worker is gone: adopted by init
                log.warning("records writer: worker %d is gone; stopping", parent)
                stop.set()
                return
            await asyncio.sleep(PARENT_CHECK_S)

    watcher = asyncio.create_task(watch_parent())
    try:
        await writer.run(stop)
    finally:
        watcher.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omnidesk-records-writer")
    parser.add_argument("--config", default=None)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--log-level", type=int, default=logging.INFO)  # the worker's
    args = parser.parse_args(argv)
    setup_json_logging()
    logging.getLogger().setLevel(args.log_level)
    loaded = load_config(args.config)  # registers its secrets, masked in every log line
    service = loaded.data.service
    writer = RecordWriter(Store.from_url(service.redis_url, service.key_prefix), conninfo(service))
    asyncio.run(_run(writer, args.parent))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
