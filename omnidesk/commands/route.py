"""`omnidesk route`: normalize raw payloads offline (no Redis) and route them.

One file prints its decision (or one JSON object with --json). Several files or
folders replay past traffic against the rules: one JSON line per payload, an
error line per bad one, then a summary of the queues hit; exit 2 if any was bad.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omnidesk.commands import one_line
from omnidesk.configload import load_config
from omnidesk.errors import OmnideskError, PayloadError
from omnidesk.model import Channel, Decision, Inbound, Skipped, to_builtins
from omnidesk.routing import Routing
from omnidesk.text import preview
from router import explain


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("route", help="normalize and route raw payloads offline")
    parser.add_argument("paths", nargs="+", metavar="FILE", help="payload files or folders")
    parser.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")
    parser.add_argument(
        "--channel",
        default="auto",
        choices=["auto", *(c.value for c in Channel)],
        help="the payloads' channel; auto: by file name (.eml, .telegram.json, ...)",
    )
    parser.add_argument("--account", default="default")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def channel_for(path: Path, given: str) -> Channel:
    """The channel a payload file holds: as given, else from its name."""
    if given != "auto":
        return Channel(given)
    name = path.name.lower()
    if name.endswith(".eml"):
        return Channel.EMAIL
    for channel in Channel:
        if name.endswith(f".{channel.value}.json"):
            return channel
    raise PayloadError(
        f"{path}: cannot tell the channel from the name; give --channel", reason="unknown_channel"
    )


def payload_files(paths: list[str]) -> Iterator[Path]:
    for item in paths:
        path = Path(item)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        else:
            yield path


Routed = tuple[Inbound, Decision] | Skipped


def route_payload(routing: Routing, path: Path, channel_arg: str, account: str) -> list[Routed]:
    """Every message in one payload file with its decision, or why it was skipped."""
    from connectors.registry import normalize

    channel = channel_for(path, channel_arg)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PayloadError(f"{path}: cannot read: {exc.strerror}", reason="unreadable") from None
    if len(raw) > routing.loaded.data.limits.max_raw_bytes:
        raise PayloadError(
            f"{path}: {len(raw)} bytes is over the {routing.loaded.data.limits.max_raw_bytes}"
            "-byte limit",
            reason="too_large",
        )
    return [
        item if isinstance(item, Skipped) else (item, routing.decide(item))
        for item in normalize(channel, raw, account=account)
    ]


def result_view(result: Routed, *, trace: bool = True) -> dict[str, Any]:
    if isinstance(result, Skipped):
        return {"skipped": result.reason}
    inbound, decision = result
    return {"ticket": ticket_view(inbound), "decision": decision_view(decision, trace=trace)}


def ticket_view(inbound: Inbound) -> dict[str, Any]:
    """The ticket this message would open, as `omnidesk route` shows it (IDs masked)."""
    return {
        "channel": inbound.channel.value,
        "account": inbound.account,
        "external_id": inbound.external_id,
        "received_at": inbound.received_at.isoformat(),
        "sent_at": inbound.sent_at.isoformat() if inbound.sent_at else None,
        "customer": {
            "name": inbound.author.name,
            "identities": [i.key for i in inbound.author.identities],
        },
        "subject": inbound.subject,
        "preview": preview(inbound.text or inbound.html_text),
        "language": inbound.language.value,
        "thread_keys": inbound.thread_keys,
        "attachments": len(inbound.attachments),
        "flags": [f.value for f in inbound.flags],
        "opens_ticket": not inbound.is_machine_mail,
        "segment_hint": inbound.segment_hint.value,
        "region_hint": inbound.region_hint,
        "service_hint": inbound.service_hint,
    }


def describe(inbound: Inbound) -> str:
    """A few lines on the message itself, before the decision."""
    who = ", ".join(i.key for i in inbound.author.identities) or "unknown sender"
    lines = [
        f"message:    {inbound.channel.value} {inbound.external_id}",
        f"from:       {inbound.author.name} ({who})",
        f"subject:    {inbound.subject}" if inbound.subject else "",
        f"preview:    {preview(inbound.text or inbound.html_text, 120)}",
        f"language:   {inbound.language.value}"
        + (f"; flags: {', '.join(f.value for f in inbound.flags)}" if inbound.flags else ""),
    ]
    return "\n".join(line for line in lines if line)


def decision_view(decision: Decision, *, trace: bool = True) -> dict[str, Any]:
    view = to_builtins(decision)
    keys = [
        "queue",
        "priority",
        "sla_policy",
        "rule",
        "rules",
        "tags",
        "segment",
        "region",
        "auto_reply",
    ]
    return {key: view[key] for key in (*keys, "trace") if trace or key != "trace"}


def run(args: argparse.Namespace) -> int:
    routing = Routing.from_config(load_config(args.config))
    files = list(payload_files(args.paths))
    replay = len(args.paths) > 1 or any(Path(p).is_dir() for p in args.paths)
    if not replay:
        results = route_payload(routing, files[0], args.channel, args.account)
        for result in results:
            if args.json or isinstance(result, Skipped):
                print(json.dumps(result_view(result), ensure_ascii=False))
            else:
                print(describe(result[0]))
                print(explain(result[1]))
        return 0
    return _replay(routing, files, args)


def _replay(routing: Routing, files: list[Path], args: argparse.Namespace) -> int:
    queues: Counter[str] = Counter()
    bad = skipped = 0
    for path in files:
        try:
            results = route_payload(routing, path, args.channel, args.account)
        except OmnideskError as exc:
            bad += 1
            print(json.dumps({"file": str(path), "error": one_line(exc)}, ensure_ascii=False))
            continue
        for result in results:
            if isinstance(result, Skipped):
                skipped += 1
            else:
                queues[result[1].queue] += 1
            view = result_view(result, trace=False)
            print(json.dumps({"file": str(path), **view}, ensure_ascii=False))
    summary = {
        "summary": {
            "files": len(files),
            "bad": bad,
            "skipped": skipped,
            "queues": dict(queues.most_common()),
        }
    }
    print(json.dumps(summary, ensure_ascii=False))
    if bad:
        print(f"omnidesk route: {bad} of {len(files)} payloads could not be read", file=sys.stderr)
    return 2 if bad else 0
