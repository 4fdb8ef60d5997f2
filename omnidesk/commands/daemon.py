"""`omnidesk run` (the daemon) and `omnidesk worker` (dramatiq workers alone)."""

from __future__ import annotations

import argparse
import asyncio

from omnidesk import gctune
from omnidesk.logs import setup_json_logging
from omnidesk.service import Daemon, DaemonOptions


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run_p = sub.add_parser("run", help="run the daemon: connectors, workers, SLA sweeper, HTTP")
    run_p.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")
    run_p.add_argument("--workers", type=int, default=2, help="in-process worker threads (0: none)")
    run_p.add_argument(
        "--deliver-threads",
        type=int,
        default=4,
        help="with --workers 0: threads sending replies (omnidesk worker processes never do)",
    )
    run_p.add_argument("--port", type=int, default=None, help="HTTP port (default from config)")
    run_p.add_argument("--no-http", action="store_true")
    run_p.add_argument(
        "--embedded-redis",
        action="store_true",
        help="start a private redis-server when none answers",
    )
    run_p.add_argument("--drain-timeout", type=float, default=30.0)
    run_p.set_defaults(func=run)

    worker_p = sub.add_parser(
        "worker", help="intake and SLA workers (and a records writer) alone, for scale-out"
    )
    worker_p.add_argument("--config")
    # default: omnidesk.pipeline.WORKER_THREADS (imported only when a worker runs)
    worker_p.add_argument("--threads", type=int, default=None)
    worker_p.set_defaults(func=worker)


def run(args: argparse.Namespace) -> int:
    setup_json_logging(args.log_level if args.log_level != "WARNING" else "INFO")
    options = DaemonOptions(
        config=args.config,
        workers=args.workers,
        deliver_threads=max(1, args.deliver_threads),
        http=not args.no_http,
        http_port=args.port,
        embedded_redis=args.embedded_redis,
        drain_timeout=args.drain_timeout,
    )
    return asyncio.run(_run(options))


async def _run(options: DaemonOptions) -> int:
    daemon = Daemon(options)
    try:
        await daemon.initialize()
        await daemon.start()
        gctune.settle()  # start-up is done: what it made lives as long as the process
        return await daemon.run_until_signalled()
    finally:
        await daemon.stop()
        await daemon.shutdown()


def worker(args: argparse.Namespace) -> int:
    from omnidesk.pipeline import main as worker_main

    setup_json_logging(args.log_level if args.log_level != "WARNING" else "INFO")
    argv = ["--threads", str(args.threads)] if args.threads is not None else []
    if args.config:
        argv += ["--config", args.config]
    return worker_main(argv)
