"""`GET /v1/reports`: the `omnidesk report` figures over HTTP for a supervisor, in any of
its formats (json, csv, html, pdf), with the same checks: a bad date, an unknown filter
value (queue, region, agent) or format is a 400 naming it, never a report of zeros.

Query: from, to (local dates, default the 30 days to today), queue, region, channel,
segment, agent, format (json), lang (en|ar), digits (latn|arab). Login: the dashboard's
supervisor bearer token, or else a directory login's session cookie, turned into a `Viewer`
by `Dashboard.authorize` (`authorize_session`; the login the agents part sets). A
supervisor sees only its own queues: a queue, region or agent filter outside them is a 403;
without a queue filter a supervisor gets the combined figures of exactly its own queues
(the figures' queue filter takes a set). The operator's $OMNIDESK_DASHBOARD_TOKEN sees
every queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from omnidesk.errors import PermanentError, TransientError
from omnidesk.i18n import DIGITS, LANGS
from omnidesk.model import Channel, Segment
from omnidesk.reports.html import as_html, branding_from
from omnidesk.reports.pdf import NoChromium, print_pdf
from omnidesk.reports.render import render
from omnidesk.reports.source import ReportsUnavailable, figures_for
from omnidesk.viewers import supervisor_or_refusal

FORMATS = {"json": "application/json", "csv": "text/csv", "html": "text/html",
           "pdf": "application/pdf"}  # fmt: skip
FILTERS = ("queue", "region", "channel", "segment", "agent")


class BadQuery(ValueError):
    pass


class OutOfScope(PermissionError):
    """A filter naming a queue, region or agent outside the supervisor's queues."""


def scoped(
    filters: dict[str, str | frozenset[str] | None], config: Any, queues: tuple[str, ...] | None
) -> None:
    """Check `filters` against a viewer's queues (None: every queue) and pin the queue
    filter to the scope (the set of its queues when none is named), so no figure from
    another queue (CSAT comments are customers' words) reaches a supervisor."""
    if queues is None:
        return
    mine = sorted(q for q in config.queues if q in queues)
    queue = filters.get("queue")
    if queue is not None and queue not in mine:
        raise OutOfScope(f"queue={queue!r}: not one of your queues ({', '.join(mine)})")
    region = filters.get("region")
    regions = {config.queues[q].region for q in mine if config.queues[q].region}
    if region is not None and region not in regions:
        raise OutOfScope(f"region={region!r}: none of your queues is in it")
    agent = filters.get("agent")
    agents = {v for a in config.agents if set(a.queues) & set(mine) for v in (a.id, a.email) if v}
    if agent is not None and agent not in agents:
        raise OutOfScope(f"agent={agent!r}: not an agent of your queues")
    if queue is None:
        if not mine:  # an empty set would read as no filter at all: every queue
            raise OutOfScope("none of your queues is in the config")
        filters["queue"] = mine[0] if len(mine) == 1 else frozenset(mine)


def _day(query: Any, name: str, default: date) -> date:
    text = query.get(name)
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{name}={text!r}: not a date (use YYYY-MM-DD)") from None


def _choice(query: Any, name: str, allowed: Any, default: str) -> str:
    value = query.get(name, default)
    if value not in allowed:
        raise BadQuery(f"{name}={value!r}: use one of {', '.join(allowed)}")
    return value


def _query_filters(query: Any) -> dict[str, str | frozenset[str] | None]:
    """The report's filters from the query string; a channel or segment must be a known one."""

    filters: dict[str, str | frozenset[str] | None] = {k: query.get(k) or None for k in FILTERS}
    for name, closed in (("channel", Channel), ("segment", Segment)):
        if filters[name] is not None and filters[name] not in {c.value for c in closed}:
            allowed = ", ".join(c.value for c in closed)
            raise BadQuery(f"{name}={filters[name]!r}: use one of {allowed}")
    return filters


def route_hook(
    dashboard: Any, records: Callable[[], Any] | None = None, base_dir: Path | None = None
) -> Callable[..., None]:
    """`dashboard` gives the store, the current config and context, and the token check
    (all swapped on reload); `records` opens a PostgreSQL connection, None without one;
    `base_dir` is the config file's folder (a relative branding logo's base)."""

    def build(query: Any, viewer: Any) -> tuple[bytes | str, str, str]:
        """(body, content type, file name); for a PDF the body is the HTML page to print,
        printed afterwards by `print_pdf` outside this (the default executor's) thread."""
        config, ctx = dashboard.config, dashboard.ctx
        fmt = _choice(query, "format", FORMATS, "json")
        lang = _choice(query, "lang", LANGS, "en")
        digits = _choice(query, "digits", DIGITS, "latn")
        end = _day(query, "to", datetime.now(ctx.tz).date())
        start = _day(query, "from", end - timedelta(days=29))
        filters = _query_filters(query)
        scoped(filters, config, viewer.queues)
        result = figures_for(records, config, ctx, start, end, filters)
        titles = {name: q.title for name, q in config.queues.items() if q.title}

        options = {"lang": lang, "titles": titles, "digits": digits,
                   "branding": branding_from(config, base_dir)}  # fmt: skip
        name = f"report-{start}-{end}.{fmt}"
        if fmt == "pdf":
            return as_html(result, **options), FORMATS[fmt], name

        return render(result, fmt, **options).encode(), FORMATS[fmt], name

    async def report(request: web.Request) -> web.Response:
        viewer = await supervisor_or_refusal(request, dashboard)
        if isinstance(viewer, web.Response):
            return viewer

        try:
            body, kind, name = await asyncio.to_thread(build, request.rel_url.query, viewer)
            if isinstance(body, str):  # the page to print
                body = await print_pdf(body)
        except OutOfScope as exc:
            return web.json_response({"error": str(exc)}, status=403)
        except ReportsUnavailable as exc:  # PostgreSQL away: no figures, say so plainly
            return web.json_response({"error": str(exc), "code": "records_unavailable"},
                                     status=503, headers={"Retry-After": "30"})  # fmt: skip
        except NoChromium as exc:  # this server cannot print at all
            return web.json_response({"error": str(exc)}, status=503)
        except TransientError as exc:  # busy printing, a hung print killed, PostgreSQL away
            return web.json_response({"error": str(exc)}, status=503,
                                     headers={"Retry-After": "30"})  # fmt: skip
        except (ValueError, PermanentError) as exc:  # bad input, unknown filter values
            return web.json_response({"error": str(exc)}, status=400)
        headers = {"Cache-Control": "no-store",
                   "Content-Disposition": f'attachment; filename="{name}"'}  # fmt: skip
        charset = None if kind == FORMATS["pdf"] else "utf-8"
        return web.Response(body=body, content_type=kind, charset=charset, headers=headers)

    def hook(app: web.Application) -> None:
        app.router.add_get("/v1/reports", report)

    return hook
