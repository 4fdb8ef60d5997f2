"""`omnidesk quarantine list | show ID | retry ID`: payloads that could not be read."""

from __future__ import annotations

import argparse
import json
import sys

from omnidesk.commands.tickets import format_table
from omnidesk.configload import load_config
from omnidesk.errors import OmnideskError, PermanentError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("quarantine", help="payloads that could not be normalized")
    parser.add_argument("--config")
    qsub = parser.add_subparsers(dest="action", required=True)
    list_p = qsub.add_parser("list")
    list_p.add_argument("--json", action="store_true")
    show_p = qsub.add_parser("show")
    show_p.add_argument("id")
    show_p.add_argument(
        "--raw", action="store_true", help="the payload's bytes (escaped on a terminal)"
    )
    retry_p = qsub.add_parser("retry", help="run an item again with the current code and config")
    retry_p.add_argument("id", nargs="+")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from omnidesk.runtime import Runtime

    runtime = Runtime.for_service(load_config(args.config))
    quarantine = runtime.quarantine
    if args.action == "list":
        items = quarantine.list()
        if args.json:
            for item in items:
                print(
                    json.dumps(
                        {
                            "id": item.id,
                            "channel": item.channel,
                            "reason": item.reason,
                            "error": item.error,
                            "source": item.source,
                            "at": item.quarantined_at.isoformat(),
                        },
                        ensure_ascii=False,
                    )
                )
        else:
            print(
                format_table(
                    ["id", "channel", "reason", "source", "error"],
                    [[i.id, i.channel, i.reason, i.source, i.error[:70]] for i in items],
                )
            )
        return 0
    if args.action == "show":
        item = quarantine.get(args.id)
        if item is None:
            raise PermanentError(f"no quarantined payload {args.id}")
        if args.raw and not sys.stdout.isatty():  # to a file or a pipe: the bytes as kept
            sys.stdout.buffer.write(item.payload)
            return 0
        if args.raw:  # to a terminal: as text, its escapes shown (omnidesk.cli writer)
            print(item.payload.decode("utf-8", "replace"))
            return 0
        print(
            json.dumps(
                {
                    "id": item.id,
                    "channel": item.channel,
                    "account": item.account,
                    "reason": item.reason,
                    "error": item.error,
                    "source": item.source,
                    "received_at": item.received_at.isoformat(),
                    "quarantined_at": item.quarantined_at.isoformat(),
                    "attempts": item.attempts,
                    "sha256": item.sha256,
                    "bytes": item.size,
                },
                ensure_ascii=False,
            )
        )
        return 0
    failed = 0
    for qid in args.id:
        try:
            results = runtime.retry_quarantined(qid)
        except KeyError:
            failed += 1
            print(f"{qid}: no such quarantined payload", file=sys.stderr)
            continue
        except OmnideskError as exc:
            failed += 1
            print(f"{qid}: still failing: {' '.join(str(exc).split())}", file=sys.stderr)
            continue
        done = ", ".join(f"{r.outcome} {r.ticket_id or ''}".strip() for r in results) or "skipped"
        print(f"{qid}: {done}")
    return 2 if failed else 0
