"""The live supervisor dashboard: `/dashboard` (a page, with dashboard.js and dashboard.css),
`/v1/dashboard.json?lang=ar|en` (one snapshot) and `/v1/dashboard/stream?lang=` (the same
snapshot pushed as Server-Sent Events whenever the events stream says something in the
supervisor's queues changed, and every few seconds as business time runs).

Login: a bearer token, or else a directory login's session cookie. `Dashboard.authorize`
(`authorize_session`) turns it into a `Viewer` (who, which queues) or refuses it saying why
(`BadToken`, `SessionEnded`: 401, `NotSupervisor`: 403; omnidesk.viewers). The daemon
passes its plugins' hooks: the agents plugin knows the supervisors and their sessions (scope
`Roster.queues_of`); without it, the operator's token in
$OMNIDESK_DASHBOARD_TOKEN sees every queue (none set: all refused), and no session exists.

The stream is read with fetch(), not EventSource: EventSource sends no Authorization
header, and the operator's token has no agents' session cookie; the page reconnects itself.

Kept whole though over 500 lines: the snapshot, its routes and its push stream share the
Dashboard's caches; the login (omnidesk.viewers) and the events reader (event_hub) are out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime
from importlib import resources
from typing import Any

from aiohttp import web

from omnidesk.errors import OmnideskError, StoreUnavailable
from omnidesk.event_hub import HUB_KEY, EventHub
from omnidesk.i18n import LANGS, Translator
from omnidesk.reports import dashtext
from omnidesk.reports.fold import Context
from omnidesk.text import display_safe_tree
from omnidesk.viewers import (  # noqa: F401  (re-exported: the dashboard's login)
    Authorize,
    AuthorizeSession,
    BadToken,
    NoCredentials,
    NotAuthorized,
    NotSupervisor,
    Viewer,
    bearer_token,
    env_authorize,
    no_sessions,
    viewer_check,
)
from omnidesk.webguard import add_asset_routes

log = logging.getLogger("omnidesk.reports.dashboard")

TICK_S = 10.0  # a fresh snapshot at least this often: time left runs on without events
SETTLE_S = 0.2  # a burst of events (a bulk import) makes one snapshot, not hundreds
RISK_SCAN = 500  # running clocks of the viewer's queues looked at for the at-risk list
RISK_SHOWN = 50
SHARE_S = 0.3  # one reading serves every page of the same queues and language this long
HELD_SHOWN = 20  # tickets of the viewer's queues listed per agent (its load counts them all)
QUIET_TYPES = frozenset(  # change nothing shown (a burst of failed logins makes no snapshot)
    {"token_created", "token_revoked", "login", "login_failed", "login_locked", "logout"}
)
TODAY_TTL_S = 15.0  # today's figures (PostgreSQL) are read at most this often per scope
_NOTHING_TODAY: dict[str, Any] = {  # a scope without queues: nothing to ask PostgreSQL
    "totals": {"opened": 0, "resolved": 0, "csat": {"responses": 0, "average": None}},
    "by": {"queue": {}, "region": {}},
}


class Dashboard:
    def __init__(
        self,
        store: Any,
        config: Any,
        ctx: Context | None = None,
        sla: Any = None,
        records: Callable[[], AbstractContextManager[Any]] | None = None,
        authorize: Authorize = env_authorize,
        authorize_session: AuthorizeSession = no_sessions,
        more_agents: Callable[[], list[Any]] = list,
    ) -> None:
        # Who may see it: the daemon passes its plugins' `authorize` hooks (the agents'
        # supervisors), then the operator's token; and their `authorize_session` hooks (a
        # directory login's session cookie, when the request has no token).
        self.authorize = authorize
        self.authorize_session = authorize_session
        self.more_agents = more_agents  # the plugins' agents beyond the config's (directory)
        self.store = store
        self.config = config
        self.ctx = ctx or Context.from_config(config)
        self._sla: Any = sla  # the daemon's SlaClocks when it has them
        self._hub: Any = None  # an events reader of our own, only when no agents part
        self._shared: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}
        # today's figures come from PostgreSQL (`records` opens a connection; None: none)
        self._records = records
        self._calendars: Any = None  # QueueCalendars, built from the config when None
        self._today_cache: dict[tuple[str, ...], tuple[float, Any, dict[str, Any] | None]] = {}
        self._today_lock = threading.Lock()
        self._scope_locks: dict[tuple[str, ...], threading.Lock] = {}
        self._records_down = False
        if sla is not None:
            return
        try:  # the SLA engine knows each clock's business time left
            from omnidesk.sla.engine import SlaClocks

            self._sla = SlaClocks(store, config)
        except Exception as exc:  # not configured: the at-risk list stays empty
            log.info("dashboard: SLA engine unavailable (%s)", exc)

    def scope(self, viewer: Viewer) -> list[str]:
        queues = list(self.config.queues)
        return queues if viewer.queues is None else [q for q in queues if q in viewer.queues]

    # ------------------------------------------------------------ the snapshot

    def snapshot(
        self, viewer: Viewer, tr: Translator, fresh_after: float | None = None
    ) -> dict[str, Any]:
        """Everything the page shows, in the translator's language, for the viewer's queues.
        Pages of the same queues and language share a reading begun after `fresh_after`
        (time.monotonic(); the moment a stream saw its event; default SHARE_S ago): an event
        with twenty pages open reads Redis once per scope, and none gets a reading older
        than the event it was woken by. Today's figures (PostgreSQL) are kept longer:
        `_today_figures`."""
        queues = self.scope(viewer)
        key = (tuple(queues), tr.lang, tr.digits)
        since = time.monotonic() - SHARE_S if fresh_after is None else fresh_after
        begun, body = self._shared.get(key, (0.0, None))
        if body is None or begun < since:
            begun = time.monotonic()
            body = self._read(queues, tr)
            self._shared[key] = (begun, body)
        return {**body, "viewer": {"name": viewer.name, "can_reassign": viewer.can_reassign}}

    def _read(self, queues: list[str], tr: Translator) -> dict[str, Any]:
        now = datetime.now(self.ctx.tz)
        risks = self._at_risk(set(queues), tr)
        depths = self._depths(queues)
        titles = {n: q.title for n, q in self.config.queues.items()}
        at_risk: dict[str, dict[str, int]] = {}
        for row in risks:
            at_risk.setdefault(row["queue"], {"breached": 0, "risk": 0})[row["level"]] += 1
        body = {
            "lang": tr.lang,
            "dir": tr.direction,
            "at": now.isoformat(timespec="seconds"),
            "at_text": tr.datetime(now, "medium"),
            **dashtext.texts(tr),
            "queues": [
                {
                    "queue": q,
                    "title": titles.get(q) or q,
                    "waiting": depths[q],
                    "waiting_text": tr.number(depths[q]),
                    "breached": (breached := at_risk.get(q, {}).get("breached", 0)),
                    "breached_text": tr.number(breached),
                    "at_risk": (risky := at_risk.get(q, {}).get("risk", 0)),
                    "at_risk_text": tr.number(risky),
                }
                for q in queues
            ],
            "waiting_total": sum(depths.values()),
            "waiting_total_text": tr.number(sum(depths.values())),
            "tickets": risks,
            "agents": self._agents(queues, tr),
            **self._today(queues, tr, now),
            # the desk lets any agent transfer to any configured queue (Desk.transfer), so
            # every queue is a target; queue titles are config, no ticket's content
            "targets": {
                "queues": [{"id": q, "title": titles.get(q) or q} for q in self.config.queues],
            },
        }
        return display_safe_tree(body)

    def _depths(self, queues: list[str]) -> dict[str, int]:
        pipe = self.store.r.pipeline(transaction=False)
        for q in queues:
            pipe.zcard(self.store.keys.queue_waiting(q))
        return dict(zip(queues, (int(n) for n in pipe.execute()), strict=True))

    def _at_risk(self, queues: set[str], tr: Translator) -> list[dict[str, Any]]:
        """Breached and at-risk clocks of the viewer's queues, the most urgent clock of each
        ticket, least business time left first."""
        if self._sla is None:
            return []
        seen: dict[str, Any] = {}
        every = set(self.config.queues) <= queues  # the operator's scope: no filter to apply
        # filtered inside the scan, so other queues' clocks never crowd out this viewer's
        for a in self._sla.at_risk(None if every else queues, limit=RISK_SCAN):
            if a.queue in queues and a.ticket not in seen and a.remaining_seconds < dashtext.RISK_S:
                seen[a.ticket] = a
        rows = list(seen.values())[:RISK_SHOWN]
        tickets = {t.id: t for t in self.store.get_tickets([a.ticket for a in rows])}
        customers = self.store.get_customers(list({t.customer_id for t in tickets.values()}))
        names = {a.id: a.name or a.id for a in self.config.agents}
        out = []
        for a in rows:
            t = tickets.get(a.ticket)
            if t is None:
                continue
            customer = customers.get(t.customer_id)
            level = dashtext.level(a.remaining_seconds)
            out.append(
                {
                    "ticket": a.ticket,
                    "queue": a.queue,
                    "subject": (t.subject or t.preview)[:120] or tr._(dashtext.LABELS["unnamed"]),
                    "customer": (customer.name if customer else "") or t.customer_id,
                    "assignee": t.assignee or "",
                    "assignee_name": names.get(t.assignee or "", t.assignee or ""),
                    "clock": tr._(dashtext.CLOCKS.get(a.target, a.target)),
                    "left_s": int(a.remaining_seconds),
                    "left_text": dashtext.time_left(tr, a.remaining_seconds),
                    "due_text": tr.datetime(a.due_at, "short"),
                    "level": level,
                }
            )
        return out

    def _agents(self, queues: list[str], tr: Translator) -> dict[str, Any]:
        """Every agent of these queues, the config's and the plugins' (a directory's),
        offline ones included (with what they still hold); presence from P:presence:<id>,
        load from P:agent:<id>:open."""
        scope = set(queues)
        configured = {a.id for a in self.config.agents}
        known = [*self.config.agents, *(a for a in self.more_agents() if a.id not in configured)]
        agents = [a for a in known if scope & set(a.queues)]
        r, keys = self.store.r, self.store.keys
        pipe = r.pipeline(transaction=False)
        for a in agents:
            pipe.get(keys.presence(a.id))
            pipe.zrange(keys.agent_open(a.id), 0, -1)
        replies = pipe.execute()
        # every held ticket is read (capacity bounds them): only those of the viewer's
        # queues are listed, so another queue's subject never reaches this supervisor
        every = {tid for held in replies[1::2] for tid in held}
        tickets = {t.id: t for t in self.store.get_tickets(sorted(every))}
        rows = []
        for a, presence, held in zip(agents, replies[::2], replies[1::2], strict=True):
            state = presence if presence in ("online", "away") else "offline"
            mine = [t for tid in held if (t := tickets.get(tid)) is not None and t.queue in scope]
            rows.append(
                {
                    "agent": a.id,
                    "name": a.name or a.id,
                    "role": a.role,
                    "presence": state,
                    "presence_text": tr._(dashtext.PRESENCE[state]),
                    "load": len(held),
                    "capacity": a.capacity,
                    "load_text": dashtext.load(tr, len(held), a.capacity),
                    "held": [
                        {
                            "ticket": t.id,
                            "queue": t.queue,
                            "subject": (t.subject or t.preview)[:120],
                        }
                        for t in mine[:HELD_SHOWN]
                    ],
                    "held_elsewhere": len(held) - len(mine),  # in `load`, not listed
                    "held_elsewhere_text": dashtext.held_elsewhere(tr, len(held) - len(mine)),
                    "queues": [q for q in a.queues if q in scope],
                }
            )
        order = {"online": 0, "away": 1, "offline": 2}
        rows.sort(key=lambda x: (order[x["presence"]], -x["load"], x["agent"]))
        online = sum(1 for x in rows if x["presence"] == "online")
        return {"note": dashtext.agents_note(tr, len(rows), online), "list": rows}

    def reload(self, config: Any, ctx: Context, calendars: Any = None) -> None:
        """A SIGHUP's new config: the next readings use it (today's cache starts afresh)."""
        self.config, self.ctx = config, ctx
        self._calendars = calendars
        with self._today_lock:
            self._today_cache.clear()

    def _today_figures(self, queues: tuple[str, ...], today: date) -> dict[str, Any] | None:
        """Today's figures of these queues together, from PostgreSQL (one query per scope),
        kept TODAY_TTL_S so any number of open pages cost one query per scope per interval;
        None while PostgreSQL cannot answer (logged once per outage). Runs in a worker
        thread (every snapshot does), never on the event loop."""
        from omnidesk.reports.source import figures_for

        with self._today_lock:
            lock = self._scope_locks.setdefault(queues, threading.Lock())
        with lock:  # a second page of the scope waits for the first one's query, not twice
            read_at, day, figures = self._today_cache.get(queues, (0.0, None, None))
            if day == today and time.monotonic() - read_at < TODAY_TTL_S:
                return figures
            try:
                figures = figures_for(self._records, self.config, self.ctx, today, today,
                                      {"queue": frozenset(queues)}, self._calendars)  # fmt: skip
                if self._records_down:
                    log.info("dashboard: today's figures are back (PostgreSQL answers)")
                self._records_down = False
            except Exception as exc:  # this block only, never the page
                if not _outage(exc):  # not PostgreSQL away: a fault to fix, with its trace
                    log.exception("dashboard: today's figures failed")
                elif not self._records_down:
                    log.warning("dashboard: today's figures unavailable: %s", exc)
                self._records_down, figures = True, None
            self._today_cache[queues] = (time.monotonic(), today, figures)
            return figures

    def _today(self, queues: list[str], tr: Translator, now: datetime) -> dict[str, Any]:
        """Today's SLA compliance per branch (queue) and region, opened, resolved, CSAT and
        calls (answer rate, missed awaiting callback: the calls of the scope's branches),
        of the viewer's queues only (so a supervisor's regions count only their own queues'
        tickets), from PostgreSQL; PostgreSQL away: the block says so, the rest stands."""
        figures = self._today_figures(tuple(queues), now.date()) if queues else _NOTHING_TODAY
        if figures is None:
            note = tr._(dashtext.TODAY_UNAVAILABLE)
            return {
                "today": {"available": False, "note": note, "opened": None, "opened_text": "—",
                          "resolved": None, "resolved_text": "—",
                          **dashtext.calls_today(tr, None)},
                "compliance": {"branches": [], "regions": []},
                "csat": {"responses": None, "responses_text": "—", "average": None,
                         "average_text": "—"},
            }  # fmt: skip
        titles = {n: q.title for n, q in self.config.queues.items()}
        totals, by = figures["totals"], figures["by"]
        empty_sla = {t: {"compliance": None} for t in ("first_response", "resolution")}
        branches = [
            self._compliance(titles.get(q) or q, by["queue"][q]["sla"] if q in by["queue"]
                             else empty_sla, tr)
            for q in queues
        ]  # fmt: skip
        regions = [
            self._compliance(region or tr._("unknown"), block["sla"], tr)
            for region, block in sorted(by["region"].items())
        ]
        opened, resolved = totals["opened"], totals["resolved"]
        csat_n, average = totals["csat"]["responses"], totals["csat"]["average"]
        return {
            "today": {
                "available": True,
                "note": "",
                "opened": opened,
                "opened_text": tr.number(opened),
                "resolved": resolved,
                "resolved_text": tr.number(resolved),
                **dashtext.calls_today(tr, figures.get("calls")),
            },
            "compliance": {"branches": branches, "regions": regions},
            "csat": {
                "responses": csat_n,
                "responses_text": tr.number(csat_n),
                "average": average,
                "average_text": tr._("no data") if average is None else tr.number(average),
            },
        }

    @staticmethod
    def _compliance(name: str, sla: dict[str, Any], tr: Translator) -> dict[str, Any]:
        frt = sla["first_response"]["compliance"]
        res = sla["resolution"]["compliance"]
        return {
            "name": name,
            "first_response": frt,
            "first_response_text": dashtext.share(tr, frt),
            "resolution": res,
            "resolution_text": dashtext.share(tr, res),
        }

    # ------------------------------------------------------------ push

    def hub(self, app: web.Application) -> Any:
        """The process's one events reader: the agents part's, or else one of our own."""
        if HUB_KEY in app:
            return app[HUB_KEY]
        if self._hub is None:
            self._hub = EventHub(self.store)
        return self._hub


def concerns(fields: dict[str, str], queues: list[str]) -> bool:
    """An event that may change what this viewer sees: one on its queues (a transfer also
    from them), or one of no queue (presence)."""
    if fields.get("type") in QUIET_TYPES:
        return False
    queue = fields.get("queue")
    return not queue or queue in queues or fields.get("from") in queues


def _lang(request: web.Request) -> str:
    lang = request.query.get("lang", "ar")
    return lang if lang in LANGS else "ar"


def refusal(exc: NotAuthorized, tr: Translator) -> web.Response:
    code = "no_token" if isinstance(exc, NoCredentials) else exc.code
    key = "no_token" if isinstance(exc, NoCredentials) else exc.message_key
    body = {"error": code, "message": tr._(dashtext.ERRORS[key]), "lang": tr.lang,
            "dir": tr.direction, **dashtext.texts(tr)}  # fmt: skip
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    return web.json_response(body, status=exc.status, headers=headers, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


async def _push(
    dashboard: Dashboard,
    request: web.Request,
    response: web.StreamResponse,
    sub: Any,
    viewer: Viewer,
    tr: Translator,
) -> None:
    """Write a snapshot, then another when an event concerns the viewer (after a burst has
    settled) or every TICK_S; re-check the token (or session) every TICK_S. Returns when the
    stream is cut off or the token is refused."""
    check = viewer_check(request, dashboard.authorize, dashboard.authorize_session)
    checked = time.monotonic()
    woken: float | None = None  # when this stream saw the event that asks for a reading
    while True:
        await _write_snapshot(dashboard, response, viewer, tr, woken)
        changed = await _wait_for_change(sub, dashboard, viewer)
        if changed is None:
            return  # cut off (too slow, or the server stops): the page reconnects
        woken = None
        if changed:  # let the rest of a burst arrive, then one snapshot for all of it
            woken = time.monotonic()
            await asyncio.sleep(SETTLE_S)
            while not sub.queue.empty():
                if sub.queue.get_nowait() is None:
                    return
        if time.monotonic() - checked >= TICK_S:  # a revoked token or session ends the stream
            checked = time.monotonic()
            recheck = await _reauthorize(check, response, viewer, tr)
            if recheck is None:
                return
            viewer = recheck


async def _write_snapshot(
    dashboard: Dashboard,
    response: web.StreamResponse,
    viewer: Viewer,
    tr: Translator,
    woken: float | None,
) -> None:
    try:
        body = await asyncio.to_thread(dashboard.snapshot, viewer, tr, woken)
        text = _dumps(body)
        await response.write(f"event: snapshot\ndata: {text}\n\n".encode())
    except OmnideskError as exc:  # Redis away: say so; the next round tries again
        log.warning("dashboard snapshot: %s", exc)
        await response.write(b"event: unavailable\ndata: {}\n\n")


async def _wait_for_change(sub: Any, dashboard: Dashboard, viewer: Viewer) -> bool | None:
    """Until an event that concerns the viewer arrives (True) or TICK_S has passed (False);
    None when the stream is cut off."""
    deadline = asyncio.get_running_loop().time() + TICK_S
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return False
        try:
            entry = await asyncio.wait_for(sub.queue.get(), timeout=left)
        except TimeoutError:
            return False
        if entry is None or sub.overflowed:
            return None
        if concerns(entry[1], dashboard.scope(viewer)):
            return True


async def _reauthorize(
    check: Callable[[], Viewer], response: web.StreamResponse, viewer: Viewer, tr: Translator
) -> Viewer | None:
    """The token's (session's) viewer now (the one it had when Redis cannot say); None,
    after telling the page, when it is refused."""
    try:
        return await asyncio.to_thread(check)
    except NotAuthorized as exc:
        message = {"error": exc.code, "message": tr._(dashtext.ERRORS[exc.message_key])}
        await response.write(f"event: refused\ndata: {_dumps(message)}\n\n".encode())
        return None
    except OmnideskError:
        return viewer


async def _viewer_of(
    dashboard: Dashboard, request: web.Request, tr: Translator
) -> Viewer | web.Response:
    """The request's viewer (by its token, else its login session), or the refusal."""
    try:
        check = viewer_check(request, dashboard.authorize, dashboard.authorize_session)
        return await asyncio.to_thread(check)
    except NotAuthorized as exc:
        return refusal(exc, tr)


def _unavailable(tr: Translator) -> web.Response:
    body = {"error": "unavailable", "message": tr._(dashtext.ERRORS["unavailable"])}
    return web.json_response(body, status=503, headers={"Retry-After": "5"}, dumps=_dumps)


async def _stream(dashboard: Dashboard, request: web.Request) -> web.StreamResponse:
    """The live dashboard as server-sent events."""
    tr = dashtext.lang_translator(_lang(request))
    viewer = await _viewer_of(dashboard, request, tr)
    if isinstance(viewer, web.Response):
        return viewer
    hub = dashboard.hub(request.app)
    sub = hub.subscribe()  # before the first snapshot: nothing after it is missed
    try:
        try:
            await hub.started()
        except StoreUnavailable:
            return _unavailable(tr)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await _push(dashboard, request, response, sub, viewer, tr)
        return response
    finally:
        hub.unsubscribe(sub)


def route_hook(dashboard: Dashboard) -> Callable[[web.Application], None]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_page(), content_type="text/html", charset="utf-8")

    async def data(request: web.Request) -> web.Response:
        tr = dashtext.lang_translator(_lang(request))
        viewer = await _viewer_of(dashboard, request, tr)
        if isinstance(viewer, web.Response):
            return viewer
        try:
            body = await asyncio.to_thread(dashboard.snapshot, viewer, tr)
        except StoreUnavailable:
            return _unavailable(tr)
        return web.json_response(body, headers={"Cache-Control": "no-store"}, dumps=_dumps)

    async def stream(request: web.Request) -> web.StreamResponse:
        return await _stream(dashboard, request)

    def hook(app: web.Application) -> None:
        app.router.add_get("/dashboard", page)
        app.router.add_get("/v1/dashboard.json", data)
        app.router.add_get("/v1/dashboard/stream", stream)
        add_asset_routes(app, "omnidesk", ["dashboard.js", "dashboard.css"])

        async def close_hub(_: web.Application) -> None:
            if dashboard._hub is not None:
                await dashboard._hub.close()

        app.on_shutdown.append(close_hub)

    return hook


def _page() -> str:
    return resources.files("omnidesk").joinpath("static/dashboard.html").read_text("utf-8")


def _outage(exc: BaseException) -> bool:
    """PostgreSQL away or failing for now (not a report that cannot be made)."""
    import psycopg

    from omnidesk.db.connect import RecordsUnavailable, is_transient
    from omnidesk.reports.source import ReportsUnavailable

    return isinstance(exc, RecordsUnavailable | ReportsUnavailable) or (
        isinstance(exc, psycopg.Error) and is_transient(exc)
    )
