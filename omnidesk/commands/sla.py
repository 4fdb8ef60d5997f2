"""`omnidesk sla TICKET` and `omnidesk sla at-risk [--queue Q]`: SLA clocks as Redis has them.

`sla TICKET` prints each clock (due time, business time left, paused or running, steps
fired, met or breached) and why its due time is what it is: the calendar slots it runs
through and the weekends, holidays and closures it skips. `sla at-risk` lists running
clocks, least business time left first.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC

from omnidesk.calendar import format_seconds
from omnidesk.configload import load_config
from omnidesk.errors import PermanentError
from omnidesk.sla.engine import SlaClocks
from omnidesk.store import Store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sla",
        help="SLA clocks of one ticket, or `at-risk` tickets by time left",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("ticket", metavar="TICKET|at-risk", help="a ticket id, or at-risk")
    parser.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")
    parser.add_argument("--queue", help="with at-risk: only this queue")
    parser.add_argument("--limit", type=int, default=50, help="with at-risk: how many")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(func=run)


def open_clocks(config_path: str | None) -> SlaClocks:
    cfg = load_config(config_path).data
    store = Store.from_url(cfg.service.redis_url, cfg.service.key_prefix)
    return SlaClocks(store, cfg)


def run(args: argparse.Namespace) -> int:
    clocks = open_clocks(args.config)
    if args.ticket == "at-risk":
        return at_risk(clocks, args)
    if args.queue:
        raise PermanentError("--queue goes with at-risk")
    return one_ticket(clocks, args.ticket, args.json)


def one_ticket(clocks: SlaClocks, ticket_id: str, as_json: bool) -> int:
    state = clocks.state(ticket_id)
    if state is None:
        known = clocks.store.get_ticket(ticket_id) is not None
        why = "has no SLA clocks (no policy)" if known else "does not exist"
        raise PermanentError(f"ticket {ticket_id} {why}")
    now = clocks.clock()
    summary = clocks.summary(ticket_id, now)
    if as_json:
        doc = {
            "ticket": ticket_id,
            "policy": state.policy,
            "calendar": state.calendar,
            "clocks": [
                {
                    "target": c.target,
                    "state": c.state,
                    "outcome": c.outcome,
                    "due_at": c.due_at.isoformat() if c.due_at else None,
                    "remaining_seconds": round(c.remaining_seconds, 3),
                    "breached": c.breached,
                    "paused_reason": c.paused_reason,
                    "steps_fired": c.steps_fired,
                }
                for c in summary
            ],
            "explain": clocks.explain(ticket_id),
        }
        print(json.dumps(doc, ensure_ascii=False))
        return 0
    for c in summary:
        due = c.due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if c.due_at else "-"
        verdict = "BREACHED" if c.breached else ("met" if c.met else c.state)
        fired = ", ".join(f"{a:.0%}" for a in c.steps_fired) or "none"
        print(
            f"{c.target:15} {verdict:9} due {due}  left {format_seconds(c.remaining_seconds)}"
            f"  steps fired: {fired}" + (f"  paused: {c.paused_reason}" if c.paused_reason else "")
        )
    print()
    for line in clocks.explain(ticket_id):
        print(line)
    return 0


def at_risk(clocks: SlaClocks, args: argparse.Namespace) -> int:
    rows = clocks.at_risk(args.queue, limit=args.limit)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "ticket": r.ticket,
                        "queue": r.queue,
                        "target": r.target,
                        "due_at": r.due_at.isoformat(),
                        "remaining_seconds": round(r.remaining_seconds, 3),
                    }
                    for r in rows
                ]
            )
        )
        return 0
    for r in rows:
        due = r.due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        left = format_seconds(r.remaining_seconds)
        print(f"{r.ticket:16} {r.queue:16} {r.target:15} due {due}  left {left}")
    if not rows:
        print("no running SLA clocks" + (f" in {args.queue}" if args.queue else ""))
    return 0
