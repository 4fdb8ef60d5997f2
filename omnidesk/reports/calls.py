"""The call report: calls per branch, answer rate and average handle time, computed with
one SQL query over the call book (`calls`, schema 0006, written by omnidesk/agents/cti.py),
and `GET /v1/reports/calls` for supervisors (the same login as /v1/reports).

A call counts on the local day (the report's time zone) it started. Answered: an agent
picked it up; the answer rate is answered / calls. Handle time is the talk time the PBX gave
at hang-up (or answer to hang-up), averaged over the answered calls that ended. A supervisor
sees the branches named by its queues or their regions; the operator's token every branch.
Awaiting callback: a missed call or voicemail from a number that has not got through since
(no later answered call from it) and whose callback ticket, if any, is not resolved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from omnidesk.errors import OmnideskError
from omnidesk.viewers import supervisor_or_refusal  # not via the dashboard: it reads this

COLUMNS = ("branch", "calls", "answered", "missed", "voicemail", "callbacks",
           "awaiting_callback", "handle_s")  # fmt: skip
_QUERY = """
SELECT branch, count(*), count(answered_at),
       count(*) FILTER (WHERE state = 'missed'), count(*) FILTER (WHERE state = 'voicemail'),
       count(*) FILTER (WHERE disposition = 'callback'),
       count(*) FILTER (WHERE state IN ('missed', 'voicemail') AND caller <> ''
           AND NOT EXISTS (SELECT 1 FROM calls later WHERE later.caller = c.caller
                           AND later.started_at > c.started_at AND later.answered_at IS NOT NULL)
           AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = c.ticket_id
                           AND t.status IN ('resolved', 'closed'))),
       avg(duration_s) FILTER (WHERE answered_at IS NOT NULL AND duration_s IS NOT NULL)
FROM calls c
WHERE started_at >= %(start)s AND started_at < %(end)s
  AND (%(all)s OR branch = ANY(%(branches)s))
  AND (%(agent)s::text IS NULL OR agent = %(agent)s)
GROUP BY branch ORDER BY branch
"""


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    calls = row["calls"]
    row["answer_rate"] = round(row["answered"] / calls, 4) if calls else None
    handle = row.pop("handle_s")
    row["average_handle_s"] = round(float(handle), 1) if handle is not None else None
    return row


def call_figures(
    conn: Any,
    start: date,
    end: date,
    tz: ZoneInfo,
    branches: Collection[str] | None = None,
    agent: str | None = None,
) -> dict[str, Any]:
    """Per branch and in total for the local days [start, end]; `branches` None: all;
    `agent`: only the calls that agent answered."""
    low = datetime.combine(start, time(), tz)
    high = datetime.combine(end + timedelta(days=1), time(), tz)
    params = {"start": low, "end": high, "all": branches is None,
              "branches": sorted(branches or ()), "agent": agent}  # fmt: skip
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in conn.execute(_QUERY, params).fetchall()]
    total: dict[str, Any] = {c: sum(r[c] for r in rows) for c in COLUMNS[1:-1]}
    timed = [(r["handle_s"], r["answered"]) for r in rows if r["handle_s"] is not None]
    weight = sum(n for _, n in timed)
    total["handle_s"] = sum(float(h) * n for h, n in timed) / weight if weight else None
    return {"from": start.isoformat(), "to": end.isoformat(),
            "branches": [_rates(r) for r in rows], "total": _rates(total)}  # fmt: skip


def branches_of(config: Any, queues: tuple[str, ...] | None) -> set[str] | None:
    """The branches a viewer may see: its queues' names and regions (None: every branch)."""
    if queues is None:
        return None
    mine = [q for q in queues if q in config.queues]
    return set(mine) | {config.queues[q].region for q in mine if config.queues[q].region}


def route_hook(dashboard: Any, records: Callable[[], Any] | None) -> Callable[..., None]:
    """GET /v1/reports/calls?from=&to= (local dates; default the 30 days to today)."""

    def build(query: Any, viewer: Any) -> dict[str, Any]:
        tz = dashboard.ctx.tz
        try:
            end = date.fromisoformat(query["to"]) if query.get("to") else datetime.now(tz).date()
            start = date.fromisoformat(query["from"]) if query.get("from") else None
        except ValueError:
            raise ValueError("from/to: not a date (use YYYY-MM-DD)") from None
        start = start or end - timedelta(days=29)
        if records is None:
            raise OmnideskError("the call report is computed in PostgreSQL: none configured")
        with records() as conn:
            return call_figures(conn, start, end, tz, branches_of(dashboard.config, viewer.queues))

    async def report(request: web.Request) -> web.Response:
        viewer = await supervisor_or_refusal(request, dashboard)
        if isinstance(viewer, web.Response):
            return viewer
        try:
            body = await asyncio.to_thread(build, request.rel_url.query, viewer)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except OmnideskError as exc:  # PostgreSQL away or not configured
            return web.json_response({"error": str(exc)}, status=503,
                                     headers={"Retry-After": "30"})  # fmt: skip
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    def hook(app: web.Application) -> None:
        app.router.add_get("/v1/reports/calls", report)

    return hook
