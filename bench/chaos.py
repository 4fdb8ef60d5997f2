"""Chaos benchmark, the long form of tests/test_chaos.py: the daemon, two worker processes
and a Redis of their own (AOF, fsync always), fed --payloads through the drop folder, IMAP
(a Dovecot of its own) and the web form, while --faults SIGKILLs take turns on Redis, a
worker, Redis, the other worker and the daemon, each followed by a restart.

It prints what each fault cost, every payload not stored exactly once with where it is, and
ends with one JSON line:
  {"payloads": ..., "lost": 0, "duplicated": 0, "faults": ..., "max_recovery_s": ..., ...}
max_recovery_s: the slowest fault, from its replacement being up until every payload that
was outstanding at the kill was stored (null: some never were). Exit 1 unless lost and
duplicated are both 0. Needs root (Dovecot switches to its user) and redis-server.

    .venv/bin/python bench/chaos.py [--payloads 10000] [--faults 10] [--rate 80]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.chaoskit import ChaosPlan, fault_cycle, run_chaos  # noqa: E402
from tests.services import dovecot_binary, running_dovecot  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", type=int, default=10_000)
    parser.add_argument("--faults", type=int, default=10)
    parser.add_argument("--rate", type=float, default=80.0, help="steady payloads per second")
    parser.add_argument("--burst", type=int, default=100, help="drop files written at each fault")
    parser.add_argument("--drain", type=float, default=300.0, help="max wait after feeding, s")
    parser.add_argument("--web-clients", type=int, default=4)
    parser.add_argument("--worker-threads", type=int, default=2)
    parser.add_argument(
        "--service-yaml", default="", help="extra lines under service: (e.g. heartbeat options)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir and its logs")
    args = parser.parse_args()
    binary = dovecot_binary()
    if binary is None or os.geteuid() != 0 or shutil.which("redis-server") is None:
        print("bench/chaos.py needs root, dovecot and redis-server", file=sys.stderr)
        return 2
    plan = ChaosPlan(
        payloads=args.payloads,
        rate=args.rate,
        faults=fault_cycle(args.faults),
        first_fault_s=5.0,
        burst=args.burst,
        drain_s=args.drain,
        web_clients=args.web_clients,
        worker_threads=args.worker_threads,
        service_extra=args.service_yaml.replace("\\n", "\n"),
    )
    workdir = Path(tempfile.mkdtemp(prefix="od-chaos-bench-"))
    try:
        with running_dovecot(binary) as dovecot:
            report = run_chaos(plan, dovecot, workdir, say=lambda line: print(line, flush=True))
    finally:
        if args.keep:
            print(f"work dir kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report.account())
    figures = report.figures()
    ok = figures["lost"] == 0 and figures["duplicated"] == 0
    if not ok:
        print("FAILED: payloads lost or duplicated (see above)", file=sys.stderr)
    print(json.dumps(figures), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
