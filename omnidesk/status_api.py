"""Track my request over HTTP: `POST /v1/status` (ticket and contact in the body, so the
contact stays out of URLs and any log), `GET /v1/status/{ticket_id}?contact=...` for simple
clients, and the public page `/status` that uses them (Arabic first, with an English toggle;
its script is a static file, as the CSP in omnidesk.webguard requires).

Only the ticket's own e-mail or phone gets an answer (omnidesk.ticket_status); a wrong
contact and an unknown ticket get the same 404, after the same minimum time, so neither the
answer nor its timing proves a ticket exists. Lookups are limited per IP (an IPv6 client by
its /64: omnidesk.ratelimit), and failed lookups per ticket number, from anyone: past
`status_failures_per_ticket` in a window, every lookup of that number gets 429, found or not,
so guessing one ticket's contact from many addresses stops there and the 429 proves nothing
(an unknown number is counted the same). Nothing logged here holds the contact.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from html import escape
from importlib import resources
from typing import Any

from aiohttp import web
from babel import Locale

from omnidesk.api import DAEMON_KEY, read_at_most
from omnidesk.errors import PayloadError, TransientError
from omnidesk.i18n import LANGS, N_, translator
from omnidesk.ratelimit import client_key
from omnidesk.ticket_status import TicketStatus, ticket_number
from omnidesk.webform import (
    Refused,
    WebForm,
    cors,
    json_answer,
    preflight,
    refusal,
    unavailable,
    web_form,
)
from omnidesk.webform_text import pick_lang

log = logging.getLogger("omnidesk.status")

STATUS_PATH = "/v1/status"
MAX_BODY = 4096
# Every answer takes at least this long: a found ticket, a wrong contact and an unknown ticket
# (one or two stores read) are not told apart by their timing.
MIN_ANSWER_S = 0.25


class StatusApi:
    def __init__(self, form: WebForm) -> None:
        self.form = form
        self.daemon = form.daemon

    def lookup(self) -> TicketStatus:
        return TicketStatus(
            self.daemon.runtime.store, self.daemon.loaded.data.queues, self.daemon.records
        )

    async def post(self, request: web.Request) -> web.Response:
        body = await read_at_most(request, MAX_BODY)
        fields: dict[str, Any] = {}
        if body:
            try:
                from connectors.web.formdata import decode

                fields = decode(request.headers.get("Content-Type"), body).fields
            except PayloadError:
                fields = {}
        return await self._answer(request, fields)

    async def get(self, request: web.Request) -> web.Response:
        fields = {"ticket": request.match_info["ticket"], **request.query}
        return await self._answer(request, fields)

    async def _answer(self, request: web.Request, fields: dict[str, Any]) -> web.Response:
        started = time.monotonic()
        asked = fields.get("lang")
        lang = pick_lang(
            request.headers.get("Accept-Language"), asked if isinstance(asked, str) else None
        )
        ticket, contact = fields.get("ticket"), fields.get("contact")
        config = web_form(request)
        limits = self.form.limits
        try:
            await self.form.limit(
                "status:ip", client_key(request.remote), config.status_lookups_per_ip,
                config.rate_window_s, lang,
            )  # fmt: skip
            found = None
            if isinstance(ticket, str) and isinstance(contact, str):
                number = ticket_subject(ticket)
                await self.form.spent(
                    "status:ticket", number, config.status_failures_per_ticket,
                    config.rate_window_s, lang,
                )  # fmt: skip
                found = await asyncio.to_thread(self.lookup().for_contact, ticket, contact)
                if found is None:
                    await asyncio.to_thread(
                        limits.hit, "status:ticket", number, config.status_failures_per_ticket,
                        config.rate_window_s,
                    )  # fmt: skip
        except Refused as exc:
            return exc.response
        except TransientError as exc:
            return unavailable(exc, lang)
        await asyncio.sleep(max(0.0, MIN_ANSWER_S - (time.monotonic() - started)))
        if found is None:
            return refusal("not_found", 404, lang)
        return json_answer(found.to_json(), 200)


def ticket_subject(ticket: str) -> str:
    """What failed lookups are counted under: the ticket number as `for_contact` reads it
    (so "od-2026-7" and "OD-2026-000007" are one), else the text as typed (bounded)."""
    return ticket_number(ticket) or ticket.strip().upper()[:64]


# The /status page's texts: element id (or status.js's key) -> msgid. status.js gets both
# languages on <main data-text>, so the toggle needs no request and no inline script.
PAGE_TEXT: dict[str, str] = {
    "title": N_("Track my request"),
    "intro": N_("Enter the request number and the e-mail or phone number you sent it from."),
    "ticket-label": N_("Request number"),
    "contact-label": N_("E-mail or phone number"),
    "submit": N_("Show status"),
    "status-label": N_("Status"),
    "queue-label": N_("Handled by"),
    "updated-label": N_("Last update"),
    "first-label": N_("First response due by"),
    "resolution-label": N_("Resolution due by"),
    "request": N_("Request"),
    "busy": N_("Looking it up…"),
    "failed": N_("Could not connect; please try again later."),
    "when": N_("{time} (Riyadh time)"),
}


def page_text(lang: str) -> dict[str, str]:
    """The page's texts in `lang`; the toggle names the other language in its own words."""
    tr = translator(lang)
    other = "en" if lang == "ar" else "ar"
    return {key: tr._(msgid) for key, msgid in PAGE_TEXT.items()} | {
        "toggle": Locale.parse(other).get_display_name(other) or other
    }


@functools.cache
def page_html() -> str:
    """status.html filled in Arabic (the page's first language), with both languages'
    texts for status.js; everything escaped."""
    template = resources.files("omnidesk").joinpath("static/status.html").read_text("utf-8")
    texts = {lang: page_text(lang) for lang in LANGS}
    ar = {key.replace("-", "_"): escape(text) for key, text in texts["ar"].items()}
    title = escape(f"{texts['ar']['title']} - {texts['en']['title']}")
    both = escape(json.dumps(texts, ensure_ascii=False))
    return template.format(**ar, page_title=title, texts=both)


async def page(request: web.Request) -> web.Response:
    return web.Response(
        text=page_html(), content_type="text/html", charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )  # fmt: skip


def add_routes(app: web.Application) -> None:
    from omnidesk.webguard import add_asset_routes

    # DaemonView is what api needs; the object stored is the Daemon, a PublicDaemon too
    api = StatusApi(WebForm(app[DAEMON_KEY]))  # type: ignore[arg-type]
    app.on_response_prepare.append(cors((STATUS_PATH,)))
    app.router.add_post(STATUS_PATH, api.post)
    app.router.add_route("OPTIONS", STATUS_PATH, preflight)
    app.router.add_get(f"{STATUS_PATH}/{{ticket}}", api.get)
    app.router.add_route("OPTIONS", f"{STATUS_PATH}/{{ticket}}", preflight)
    app.router.add_get("/status", page)
    add_asset_routes(app, "omnidesk", ["status.js", "status.css"])
