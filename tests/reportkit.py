"""Helpers for report tests: a fold context with a real business calendar, generated
event histories shaped like the stream (intake, agents, the SLA engine), and those events
stored in PostgreSQL as the records writer stores them."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from omnidesk.calendar import calendar_from
from omnidesk.reports.fold import Context

QUEUES = ("branch-riyadh", "branch-jeddah", "backoffice")
REGIONS = {"branch-riyadh": "riyadh", "branch-jeddah": "jeddah"}
CHANNELS = ("email", "whatsapp", "web")
SEGMENTS = ("consumer", "business")
AGENTS = ("sara", "omar", "lina")
RULES = ("cr", "complaints", "")
BASE_MS = int(datetime(2026, 3, 1, 5, 0, tzinfo=UTC).timestamp() * 1000)
_NATIONAL = calendar_from()


def context() -> Context:
    return Context(
        tz=ZoneInfo("Asia/Riyadh"),
        queue_regions=REGIONS,
        policy_targets={
            "standard": frozenset({"first_response", "resolution"}),
            "fast": frozenset({"first_response"}),
        },
        business=lambda q, a, b: int(_NATIONAL.seconds_between(a / 1000, b / 1000)),
    )


def history(
    seed: int, tickets: int, *, days: int = 6, customers: int = 4, base_ms: int = BASE_MS
) -> list[dict[str, str]]:
    """Events of `tickets` tickets over `days` days, merged in time order."""
    rnd = random.Random(seed)
    span = days * 86400 * 1000
    timed: list[tuple[int, int, dict[str, str]]] = []
    seq = 0
    for n in range(tickets):
        tid = f"OD-2026-{n + 1:06d}"
        t = base_ms + rnd.randrange(span)
        queue = rnd.choice(QUEUES)
        channel = rnd.choice(CHANNELS)
        status = "new"
        story: list[tuple[int, dict[str, str]]] = []

        def ev(kind: str, at: int, **fields: str) -> None:
            actor = fields.pop("actor", "system")
            common = {"ticket": tid, "queue": queue, "channel": channel}  # noqa: B023
            story.append((at, {"type": kind, **common, "actor": actor, "ts": str(at), **fields}))  # noqa: B023

        ev(
            "ticket_opened",
            t,
            customer=f"C-{rnd.randrange(customers):08d}",
            created=str(t - rnd.randrange(0, 600_000)),
            segment=rnd.choice(SEGMENTS),
            region=rnd.choice(("", "makkah")),
        )
        ev("routed", t, rule=rnd.choice(RULES), sla_policy=rnd.choice(("standard", "fast", "")))
        for _ in range(rnd.randrange(0, 9)):
            t += rnd.randrange(60_000, 2 * 86400 * 1000)
            what = rnd.choice(
                ("assign", "reply", "status", "status", "transfer", "warn", "breach", "csat",
                 "survey")
            )  # fmt: skip
            if what == "assign":
                ev("assigned", t, agent=rnd.choice(AGENTS), actor="assignment")
            elif what == "reply":
                ev("replied", t, actor=rnd.choice(AGENTS), message="M-1")
            elif what == "status":
                new = rnd.choice(("open", "pending_customer", "resolved", "closed"))
                if new != status:
                    ev("status_changed", t, **{"from": status, "to": new})
                    status = new
            elif what == "transfer":
                old, queue = queue, rnd.choice(QUEUES)
                if queue != old:
                    kind = rnd.choice(("transferred", "escalated"))
                    # an agent's transfer, or the SLA engine's escalation (a system actor)
                    who = rnd.choice(AGENTS) if kind == "transferred" else "sla"
                    ev(kind, t, **{"from": old, "reason": "test"}, actor=who)
            elif what in ("warn", "breach"):
                target = rnd.choice(("first_response", "resolution", "next_response"))
                kind = "sla_warned" if what == "warn" else "sla_breached"
                ev(kind, t, target=target, step="0.8" if what == "warn" else "1",
                   late_s=f"{rnd.random():.3f}", actor="sla")  # fmt: skip
            elif what == "survey":  # the CSAT survey goes out as a reply by "csat"
                ev("replied", t, actor="csat", message="M-2")
            else:
                comment = rnd.choice(("", "شكراً جزيلاً", "slow | but fine"))
                ev("csat", t, score=str(rnd.randrange(0, 7)), comment=comment, actor="customer")
        for at, fields in story:
            timed.append((at, seq, fields))
            seq += 1
    timed.sort(key=lambda x: (x[0], x[1]))
    return [fields for _, _, fields in timed]


COLUMNS = {"type", "ticket", "queue", "channel", "actor", "ts"}


def seed_records(conn: psycopg.Connection[Any], events: list[dict[str, str]]) -> None:
    """The events as the outbox writer stores them, and each ticket's last snapshot."""
    ms = [int(e["ts"]) for e in events]
    conn.execute(
        "SELECT ensure_event_partitions(%s, %s)",
        (datetime.fromtimestamp(min(ms) / 1000, UTC), datetime.fromtimestamp(max(ms) / 1000, UTC)),
    )
    rows, seq, last = [], 0, -1
    tickets: dict[str, dict[str, Any]] = {}
    for e in events:
        ts = int(e["ts"])
        seq = seq + 1 if ts == last else 0
        last = ts
        data = {k: v for k, v in e.items() if k not in COLUMNS}
        at = datetime.fromtimestamp(ts / 1000, UTC)
        rows.append((at, f"{ts}-{seq}", e["type"], e["ticket"], e["queue"], e.get("channel"),
                     e.get("actor"), json.dumps(data)))  # fmt: skip
        t = tickets.setdefault(e["ticket"], {"created": at, "status": "new",
                                             "customer": e.get("customer", "")})  # fmt: skip
        t.update(queue=e["queue"], channel=e.get("channel", ""), updated=at)
        if e["type"] == "status_changed" and e.get("to"):
            t["status"] = e["to"]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO events (ts, stream_id, type, ticket_id, queue, channel, actor, data) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        cur.executemany(
            "INSERT INTO tickets (id, customer_id, channel, queue, status, created_at, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    tid,
                    t["customer"],
                    t["channel"],
                    t["queue"],
                    t["status"],
                    t["created"],
                    t["updated"],
                )
                for tid, t in tickets.items()
            ],
        )
    conn.commit()


@contextmanager
def seeded_database(template: str, events: list[dict[str, str]]) -> Iterator[str]:
    """A database of its own (a copy of the schema-complete template) holding `events` as
    the records writer stores them; dropped afterwards. For module-scoped fixtures, where
    the function-scoped `pg_url` cannot serve."""
    from tests.pgkit import _admin, database_url

    name = f"od_rep_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = database_url(name)
    try:
        with psycopg.connect(url) as conn:
            seed_records(conn, events)
        yield url
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
