"""The live supervisor dashboard: `/dashboard` (a page, with dashboard.js and dashboard.css)
and `/v1/dashboard.json` (its data, polled every few seconds, so it updates without a
reload; its strings display-safe, omnidesk.text).

Login: a bearer token of a supervisor. The agents part owns tokens; until it is wired in,
`Dashboard.token_check` holds the check: the agents part sets it to its supervisors'
tokens; without agents, the token in $OMNIDESK_DASHBOARD_TOKEN (none set: all refused).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from typing import Any

from aiohttp import web

from omnidesk.reports.figures import read_raw, summarize
from omnidesk.reports.fold import Context
from omnidesk.text import display_safe_tree
from omnidesk.webguard import add_asset_routes

log = logging.getLogger("omnidesk.reports.dashboard")
TokenCheck = Callable[[str], bool]


def env_token_check(token: str) -> bool:
    expected = os.environ.get("OMNIDESK_DASHBOARD_TOKEN", "")
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


class Dashboard:
    def __init__(
        self, store: Any, config: Any, ctx: Context | None = None, sla: Any = None
    ) -> None:
        # Who may see it: the agents part swaps in its supervisors' tokens when it runs.
        self.token_check: TokenCheck = env_token_check
        self.store = store
        self.config = config
        self.ctx = ctx or Context.from_config(config)
        self._sla: Any = sla  # the daemon's SlaClocks when it has them
        if sla is not None:
            return
        try:  # the SLA engine, when present, knows each clock's business time left
            from omnidesk.sweeper import SlaClocks

            self._sla = SlaClocks(store, config)
        except Exception as exc:  # not landed or not configured: fall back to due times
            log.info("dashboard: SLA engine unavailable (%s); ordering by due time", exc)

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, read from the store and today's rollups."""
        r, key = self.store.r, self.store.key
        today = datetime.now(self.ctx.tz).date()
        queues = sorted(set(self.config.queues) | set(self.store.queues()))
        pipe = r.pipeline(transaction=False)
        for q in queues:
            pipe.zcard(key("queue", q, "waiting"))
        for status in ("new", "open", "pending_customer"):
            pipe.zcard(key("status", status))
        counts = pipe.execute()
        depths = dict(zip(queues, counts[: len(queues)], strict=True))
        raw = read_raw(r, self.store.prefix, today, today, {}, today=today)
        figures = summarize(raw, today, today, {})
        by_queue = figures["by"]["queue"]
        titles = {n: q.title for n, q in self.config.queues.items()}
        return {
            "at": datetime.now(self.ctx.tz).isoformat(timespec="seconds"),
            "open_tickets": sum(counts[len(queues) :]),
            "queues": [
                {
                    "queue": q,
                    "title": titles.get(q, ""),
                    "waiting": depths[q],
                    "opened_today": by_queue.get(q, {}).get("opened", 0),
                }
                for q in queues
            ],
            "agents": self._agents(),
            "at_risk": self._at_risk(),
            "compliance_today": {
                (region or "-"): block["sla"] for region, block in figures["by"]["region"].items()
            },
            "today": {k: figures["totals"][k] for k in ("opened", "resolved", "reopened")},
            "latest": [
                {
                    "id": t.id,
                    "queue": t.queue,
                    "status": t.status.value,
                    "channel": t.channel.value,
                    "subject": (t.subject or t.preview)[:80],
                    "created": t.created_at.isoformat(),
                }
                for t in self.store.list_tickets(limit=15)
            ],
        }

    def _agents(self) -> dict[str, Any]:
        """Presence and load, from the agents part's keys: the agents with a presence are
        the members of P:present (kept by omnidesk.agents.assign), so no keyspace SCAN; an
        expired member is dropped here (its presence key is gone with its TTL)."""
        r, key = self.store.r, self.store.key
        now_ms = int(time.time() * 1000)
        pipe = r.pipeline(transaction=False)
        pipe.zremrangebyscore(key("present"), "-inf", now_ms)
        pipe.zrange(key("present"), 0, -1)
        names = sorted(pipe.execute()[1])
        if not names:
            return {"source": "no agent has a presence (agents part not running)", "list": []}
        pipe = r.pipeline(transaction=False)
        for name in names:
            pipe.get(key("presence", name))
            pipe.zcard(key("agent", name, "open"))
        replies = pipe.execute()
        agents = [
            {"agent": n, "presence": p, "load": load}
            for n, p, load in zip(names, replies[::2], replies[1::2], strict=True)
            if p is not None
        ]
        return {"source": "presence", "list": agents}

    def _at_risk(self, limit: int = 20) -> dict[str, Any]:
        if self._sla is not None:
            try:
                items = self._sla.at_risk(limit=limit)
                return {
                    "source": "sla engine (business time left)",
                    "list": [
                        {
                            "ticket": a.ticket,
                            "queue": a.queue,
                            "target": a.target,
                            "due": a.due_at.isoformat(),
                            "left_s": int(a.remaining_seconds),
                        }
                        for a in items
                    ],
                }
            except Exception as exc:
                log.warning("dashboard: at_risk failed: %s", exc)
        # without the SLA engine: the most urgent waiting tickets by their due time
        r, key = self.store.r, self.store.key
        ids = []
        for q in self.store.queues():
            ids += r.zrange(key("queue", q, "waiting"), 0, limit - 1)
        tickets = self.store.get_tickets(ids)
        tickets.sort(key=lambda t: t.meta.get("due_at") or t.created_at.isoformat())
        return {
            "source": "due time in ticket meta (SLA engine unavailable)",
            "list": [
                {"ticket": t.id, "queue": t.queue, "due": t.meta.get("due_at", "")}
                for t in tickets[:limit]
            ],
        }


def _authorized(request: web.Request, check: TokenCheck) -> bool:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return bool(token) and check(token)


def route_hook(dashboard: Dashboard) -> Callable[[web.Application], None]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_page(), content_type="text/html", charset="utf-8")

    async def data(request: web.Request) -> web.Response:
        if not _authorized(request, dashboard.token_check):
            return web.json_response(
                {"error": "a supervisor's bearer token is required"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = display_safe_tree(await asyncio.to_thread(dashboard.snapshot))
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    def hook(app: web.Application) -> None:
        app.router.add_get("/dashboard", page)
        app.router.add_get("/v1/dashboard.json", data)
        add_asset_routes(app, "omnidesk", ["dashboard.js", "dashboard.css"])

    return hook


def _page() -> str:
    return resources.files("omnidesk").joinpath("static/dashboard.html").read_text("utf-8")
