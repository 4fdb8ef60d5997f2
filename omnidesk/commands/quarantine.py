"""`omnidesk quarantine list | show ID | retry ID | purge | stats`: payloads that could not be
read, what the quarantine holds and what it has rejected."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TYPE_CHECKING

from omnidesk.commands import config_words, pasteable
from omnidesk.configload import load_config
from omnidesk.errors import OmnideskError, PermanentError
from omnidesk.tables import format_table

if TYPE_CHECKING:
    from omnidesk.quarantine import QuarantineItem
    from omnidesk.runtime import Runtime


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
    purge_p = qsub.add_parser("purge", help="drop items older than the age limit or --older-than")
    purge_p.add_argument("--older-than", help="e.g. 90s, 30m, 12h, 7d (default: max_age_days)")
    purge_p.add_argument(
        "--reason",
        action="append",
        default=[],
        help="only items quarantined for this reason (not_json, invalid_form, ...); repeatable",
    )
    qsub.add_parser("stats", help="items, bytes kept in Redis, rejections by reason (JSON)")
    parser.set_defaults(func=run)


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


_REASON = re.compile(r"^[a-z0-9_:.-]{1,64}$")


def age_seconds(text: str) -> float:
    """Seconds in "90s", "30m", "12h", "7d" (calendar days: ages are wall-clock time)."""
    match = _AGE.match(text)
    if not match:
        raise PermanentError(f"--older-than: not an age: {text!r} (use e.g. 12h or 7d)")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def purge_filters(args: argparse.Namespace) -> tuple[float | None, list[str]]:
    """--older-than and --reason checked before anything is dropped: a bad one is one line
    on stderr and exit 2 (omnidesk.cli), with nothing purged."""
    older = age_seconds(args.older_than) if args.older_than is not None else None
    for reason in args.reason:
        if not _REASON.match(reason):
            raise PermanentError(
                f"--reason: not a reason: {reason!r} (a word such as not_json or invalid_form;"
                f" `{pasteable('quarantine', *config_words(args.config), 'stats')}` lists them)"
            )
    return older, args.reason


def run(args: argparse.Namespace) -> int:
    from omnidesk.runtime import Runtime

    filters = purge_filters(args) if args.action == "purge" else None
    runtime = Runtime.for_service(load_config(args.config))
    quarantine = runtime.quarantine
    if args.action == "list":
        _print_list(quarantine.list(), as_json=args.json)
        return 0
    if args.action == "purge":
        assert filters is not None
        older, reasons = filters
        print(f"purged {quarantine.purge(older, reasons=reasons or None)} items")
        return 0
    if args.action == "stats":
        print(json.dumps(quarantine.usage(), sort_keys=True))
        return 0
    if args.action == "show":
        shown = quarantine.get(args.id)
        if shown is None:
            raise PermanentError(f"no quarantined payload {args.id}")
        if args.raw:
            return _write_raw(args.id, shown)
        print(json.dumps(_details(shown), ensure_ascii=False))
        return 0
    return _retry(runtime, args.id)


def _print_list(items: list[QuarantineItem], *, as_json: bool) -> None:
    """One JSON line per item, or a table."""
    if not as_json:
        print(
            format_table(
                ["id", "channel", "reason", "source", "error"],
                [[i.id, i.channel, i.reason, i.source, i.error[:70]] for i in items],
            )
        )
        return
    for item in items:
        line = {
            "id": item.id,
            "channel": item.channel,
            "reason": item.reason,
            "error": item.error,
            "source": item.source,
            "at": item.quarantined_at.isoformat(),
        }
        print(json.dumps(line, ensure_ascii=False))


def _write_raw(qid: str, shown: QuarantineItem) -> int:
    """The payload as kept; 1 when only its head is (over the caps and not in the archive)."""
    kept = shown.payload if shown.whole else shown.excerpt
    if sys.stdout.isatty():  # as text, its escapes shown (omnidesk.cli's writer)
        print(kept.decode("utf-8", "replace"))
    else:  # to a file or a pipe: the bytes as kept
        sys.stdout.buffer.write(kept)
    if not shown.whole:
        print(f"\n{qid}: only the first {len(kept)} bytes", file=sys.stderr)
        return 1
    return 0


def _details(shown: QuarantineItem) -> dict[str, object]:
    return {
        "id": shown.id,
        "channel": shown.channel,
        "account": shown.account,
        "reason": shown.reason,
        "error": shown.error,
        "source": shown.source,
        "received_at": shown.received_at.isoformat(),
        "quarantined_at": shown.quarantined_at.isoformat(),
        "attempts": shown.attempts,
        "sha256": shown.sha256,
        "bytes": shown.size,
        "bytes_in_redis": shown.size if shown.kept < 0 else shown.kept,
        "archived": shown.archived,
    }


def _retry(runtime: Runtime, ids: list[str]) -> int:
    """Run each payload through intake again; 2 when any is missing or still fails."""
    failed = 0
    for qid in ids:
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
