"""The call book in PostgreSQL (schema 0006): each PBX event moves its call's row along, in
one transaction with the event's own row, so a resent event (same pbx and event id) changes
nothing and an event that cannot be written leaves nothing behind.

A call's states: ringing (new) -> answered -> completed (hung up after an answer), or
missed (hung up unanswered, or the PBX's own `missed`), or voicemail (a message left, with
its recording reference). Events may come out of order: an `answered` without a `new` makes
the row, and times already set are kept (COALESCE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

EVENT_TYPES = ("new", "answered", "hangup", "missed", "voicemail")
UNANSWERED = ("missed", "voicemail")
CALL_COLUMNS = (
    "pbx, call_id, branch, caller, customer_id, state, started_at, answered_at, ended_at,"
    " duration_s, agent, extension, recording, ticket_id, disposition"
)


@dataclass(frozen=True)
class CallEvent:
    """One PBX event, checked: its type is one of EVENT_TYPES, the caller in E.164 when it
    parses (else as sent), the agent resolved from the extension when only that was given."""

    pbx: str
    event_id: str
    call_id: str
    type: str
    at: datetime
    branch: str = ""
    caller: str = ""
    agent: str | None = None
    extension: str | None = None
    duration_s: int | None = None
    recording: str | None = None

    def data(self) -> dict[str, Any]:
        """What call_events keeps beside the columns (never a secret: none reaches here)."""
        out = {"caller": self.caller, "agent": self.agent, "extension": self.extension,
               "duration_s": self.duration_s, "recording": self.recording}  # fmt: skip
        return {k: v for k, v in out.items() if v not in (None, "")}


@dataclass(frozen=True)
class Call:
    pbx: str
    call_id: str
    branch: str
    caller: str
    customer_id: str | None
    state: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: int | None
    agent: str | None
    extension: str | None
    recording: str | None
    ticket_id: str | None
    disposition: str | None

    @property
    def key(self) -> str:
        """`<pbx>:<call id>`, how the API and the console name a call."""
        return f"{self.pbx}:{self.call_id}"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"call": self.key}
        for name, value in self.__dict__.items():
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def _new(conn: psycopg.Connection[Any], ev: CallEvent, customer: str | None) -> None:
    conn.execute(
        "INSERT INTO calls (pbx, call_id, branch, caller, customer_id, state, started_at)"
        " VALUES (%s, %s, %s, %s, %s, 'ringing', %s)"
        " ON CONFLICT (pbx, call_id) DO UPDATE SET"
        "  started_at = LEAST(calls.started_at, EXCLUDED.started_at),"
        "  caller = CASE WHEN calls.caller = '' THEN EXCLUDED.caller ELSE calls.caller END,"
        "  customer_id = COALESCE(calls.customer_id, EXCLUDED.customer_id), updated_at = now()",
        (ev.pbx, ev.call_id, ev.branch, ev.caller, customer, ev.at),
    )


_MOVES = {
    "answered": (
        "state = CASE WHEN state = 'ringing' THEN 'answered' ELSE state END,"
        " answered_at = COALESCE(answered_at, %(at)s),"
        " agent = COALESCE(%(agent)s, agent), extension = COALESCE(%(extension)s, extension)"
    ),
    "hangup": (
        "ended_at = COALESCE(ended_at, %(at)s),"
        " state = CASE WHEN state IN ('answered', 'completed') OR answered_at IS NOT NULL"
        "  THEN 'completed' WHEN state = 'voicemail' THEN state ELSE 'missed' END,"
        " duration_s = COALESCE(%(duration)s, duration_s, CASE WHEN answered_at IS NOT NULL"
        "  THEN GREATEST(0, EXTRACT(EPOCH FROM %(at)s - answered_at))::integer END)"
    ),
    "missed": (
        "state = CASE WHEN answered_at IS NULL AND state <> 'voicemail' THEN 'missed'"
        " ELSE state END, ended_at = COALESCE(ended_at, %(at)s)"
    ),
    "voicemail": (
        "state = 'voicemail', recording = COALESCE(%(recording)s, recording),"
        " ended_at = COALESCE(ended_at, %(at)s)"
    ),
}


def record(conn: psycopg.Connection[Any], ev: CallEvent, customer: str | None) -> Call | None:
    """Apply one event in the caller's transaction; the call as it now stands, or None when
    the event was taken before (a resend: nothing changes)."""
    fresh = conn.execute(
        "INSERT INTO call_events (pbx, event_id, call_id, type, at, data)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (ev.pbx, ev.event_id, ev.call_id, ev.type, ev.at, Jsonb(ev.data())),
    ).fetchone()
    if fresh is None:
        return None
    _new(conn, ev, customer)  # every event makes its call's row if it is the first seen
    if ev.type in _MOVES:
        values = {"at": ev.at, "agent": ev.agent, "extension": ev.extension,
                  "duration": ev.duration_s, "recording": ev.recording,
                  "pbx": ev.pbx, "call": ev.call_id}  # fmt: skip
        conn.execute(
            f"UPDATE calls SET {_MOVES[ev.type]}, updated_at = now()"
            " WHERE pbx = %(pbx)s AND call_id = %(call)s",
            values,
        )
    return find(conn, ev.pbx, ev.call_id)


def find(conn: psycopg.Connection[Any], pbx: str, call_id: str) -> Call | None:
    row = conn.execute(
        f"SELECT {CALL_COLUMNS} FROM calls WHERE pbx = %s AND call_id = %s",
        (pbx, call_id),
    ).fetchone()
    return Call(*row) if row else None


def dispose(
    conn: psycopg.Connection[Any], call: Call, disposition: str, ticket_id: str | None
) -> bool:
    """Set what the call became, once: False when it already became something else."""
    row = conn.execute(
        "UPDATE calls SET disposition = %s, ticket_id = COALESCE(%s, ticket_id),"
        " updated_at = now() WHERE pbx = %s AND call_id = %s"
        " AND (disposition IS NULL OR disposition = %s) RETURNING 1",
        (disposition, ticket_id, call.pbx, call.call_id, disposition),
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class PopClaim:
    """A screen-pop taken to send, and whom the call's last pop was for (to give it back)."""

    agent: str
    before: str | None


def claim_pop(conn: psycopg.Connection[Any], call: Call) -> PopClaim | None:
    """Take the call's screen-pop for its answering agent: once per agent (a resend finds it
    taken; a transfer to another agent pops again), until `release_pop` gives it back."""
    if not call.agent:
        return None
    row = conn.execute(
        "UPDATE calls c SET popped_at = now(), popped_for = %(agent)s"
        " FROM (SELECT pbx, call_id, popped_for FROM calls"
        "       WHERE pbx = %(pbx)s AND call_id = %(call)s FOR UPDATE) old"
        " WHERE c.pbx = old.pbx AND c.call_id = old.call_id"
        " AND old.popped_for IS DISTINCT FROM %(agent)s RETURNING old.popped_for",
        {"agent": call.agent, "pbx": call.pbx, "call": call.call_id},
    ).fetchone()
    return None if row is None else PopClaim(call.agent, row[0])


def release_pop(conn: psycopg.Connection[Any], call: Call, claim: PopClaim) -> None:
    """The pop was not written: as it was before the claim, so the next resend sends it."""
    conn.execute(
        "UPDATE calls SET popped_for = %(before)s,"
        " popped_at = CASE WHEN %(before)s::text IS NULL THEN NULL ELSE popped_at END"
        " WHERE pbx = %(pbx)s AND call_id = %(call)s AND popped_for = %(agent)s",
        {"before": claim.before, "pbx": call.pbx, "call": call.call_id, "agent": claim.agent},
    )


def customer_by_identities(conn: psycopg.Connection[Any], keys: list[str]) -> str | None:
    """The (final, unmerged) customer one of the identity keys belongs to in the records."""
    for key in keys:
        kind, _, value = key.partition(":")
        row = conn.execute(
            "SELECT COALESCE(c.merged_into, c.id) FROM identities i"
            " JOIN customers c ON c.id = i.customer_id"
            " WHERE i.kind = %s AND i.value = %s AND c.erased_at IS NULL",
            (kind, value),
        ).fetchone()
        if row:
            return str(row[0])
    return None


def recent_tickets(conn: psycopg.Connection[Any], customer_id: str, limit: int) -> list[tuple]:
    """(id, channel, status, queue, subject, created_at, updated_at) of the customer's latest
    tickets in the records, newest first."""
    return conn.execute(
        "SELECT id, channel, status, queue, subject, created_at, updated_at FROM tickets"
        " WHERE customer_id = %s ORDER BY updated_at DESC LIMIT %s",
        (customer_id, limit),
    ).fetchall()
