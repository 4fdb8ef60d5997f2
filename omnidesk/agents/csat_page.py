"""The small page e-mail surveys link to: GET /csat/<token> shows the 1-5 form (with the
score from the link preselected), POST records the answer once. Bilingual (Arabic first,
from the gettext catalogues: omnidesk.i18n); a Jinja2 template (agents/pages/csat.html)
with autoescape, so no value reaches the page unescaped."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined

from omnidesk.agents import csat
from omnidesk.agents.http import SERVICE_KEY
from omnidesk.i18n import N_, translator
from omnidesk.webguard import add_asset_routes

PAGES = Environment(
    loader=PackageLoader("omnidesk.agents", "pages"),
    autoescape=True,  # every value is text: a ticket number, a catalogue message
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
AR, EN = translator("ar"), translator("en")
NOT_VALID = N_("This link is not valid.")


def both(msgid: str, **values: str) -> dict[str, str]:
    """A message in Arabic and English (the link says nothing of the reader's language)."""
    return {"ar": AR._(msgid).format(**values), "en": EN._(msgid).format(**values)}


def pair(msgid: str) -> str:
    """A short label in both languages on one line: "Arabic - English"."""
    return f"{AR._(msgid)} - {EN._(msgid)}"


def page(status: int = 200, **values: Any) -> web.Response:
    """The page (agents/pages/csat.html): the form when `survey` is given, else `message`."""
    values.setdefault("survey", None)
    html = PAGES.get_template("csat.html").render(title=pair(N_("Rate our service")), **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def thanks(ticket: str, already: bool) -> dict[str, str]:
    if already:
        return both(N_("Thank you: your rating for {ticket} was already recorded."), ticket=ticket)
    return both(N_("Thank you for your feedback."))


async def show(request: web.Request) -> web.Response:
    store = request.app[SERVICE_KEY].store
    token = request.match_info["token"]
    survey = await asyncio.to_thread(csat.lookup, store, token)
    if survey is None:
        return page(404, message=both(NOT_VALID))
    if "csat_score" in survey:
        return page(message=thanks(survey["ticket"], already=True))
    return page(
        survey=survey,
        scores=csat.SCORES,
        chosen=request.query.get("score", ""),
        asked=both(N_("How did we do?")),
        comment=pair(N_("Comment (optional)")),
        send=pair(N_("Send")),
        max_comment=csat.MAX_COMMENT,
    )


async def answer(request: web.Request) -> web.Response:
    store = request.app[SERVICE_KEY].store
    token = request.match_info["token"]
    form = await request.post()
    try:
        score = int(str(form.get("score", "")))
        if not 1 <= score <= 5:
            raise ValueError
    except ValueError:
        return page(400, message=both(N_("Choose a score 1-5.")))
    comment = str(form.get("comment", ""))
    outcome, ticket = await asyncio.to_thread(csat.record, store, token, score, comment, "web")
    if outcome == "unknown":
        return page(404, message=both(NOT_VALID))
    if outcome == "already":
        return page(409, message=thanks(ticket, already=True))
    return page(message=thanks(ticket, already=False))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/csat/{token}", show)
    app.router.add_post("/csat/{token}", answer)
    add_asset_routes(app, "omnidesk.agents", ["csat.css"])
