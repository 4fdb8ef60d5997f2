"""The small page e-mail surveys link to: GET /csat/<token> shows the 1-5 form (with the
score from the link preselected), POST records the answer once. Bilingual (Arabic first,
from the gettext catalogues: omnidesk.i18n), escaped."""

from __future__ import annotations

import asyncio
from html import escape

from aiohttp import web

from omnidesk.agents import csat
from omnidesk.agents.http import SERVICE_KEY
from omnidesk.i18n import N_, translator
from omnidesk.webguard import add_asset_routes

PAGE = """<!doctype html>
<html lang="ar" dir="rtl"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/static/csat.css"></head>
<body>{body}</body></html>"""

AR, EN = translator("ar"), translator("en")
NOT_VALID = N_("This link is not valid.")


def both(msgid: str, **values: str) -> str:
    """A message as two paragraphs, Arabic then English (the link says nothing of the
    reader's language), escaped."""
    ar, en = (escape(tr._(msgid).format(**values)) for tr in (AR, EN))
    return f'<p>{ar}</p><p dir="ltr">{en}</p>'


def pair(msgid: str) -> str:
    """A short label in both languages on one line: "Arabic - English", escaped."""
    return escape(f"{AR._(msgid)} - {EN._(msgid)}")


def page(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=PAGE.format(title=pair(N_("Rate our service")), body=body),
        status=status,
        content_type="text/html",
        charset="utf-8",
    )


def thanks(ticket: str, already: bool) -> str:
    if already:
        return both(N_("Thank you: your rating for {ticket} was already recorded."), ticket=ticket)
    return both(N_("Thank you for your feedback."))


async def show(request: web.Request) -> web.Response:
    store = request.app[SERVICE_KEY].store
    token = request.match_info["token"]
    survey = await asyncio.to_thread(csat.lookup, store, token)
    if survey is None:
        return page(both(NOT_VALID), 404)
    if "csat_score" in survey:
        return page(thanks(survey["ticket"], already=True))
    chosen = request.query.get("score", "")
    options = "".join(
        f'<label><input type="radio" name="score" value="{n}"'
        f"{' checked' if str(n) == chosen else ''} required> {n}</label>"
        for n in csat.SCORES
    )
    asked = N_("How did we do?")
    comment, send = pair(N_("Comment (optional)")), pair(N_("Send"))
    body = (
        f"<h1>{escape(AR._(asked))} <span dir='ltr'>{escape(EN._(asked))}</span></h1>"
        f"<p>{escape(survey['ticket'])}</p>"
        f'<form method="post"><p>{options}</p>'
        f'<p><label for="comment">{comment}</label></p>'
        '<textarea id="comment" name="comment" dir="auto" maxlength="2000"></textarea>'
        f'<p><button type="submit">{send}</button></p></form>'
    )
    return page(body)


async def answer(request: web.Request) -> web.Response:
    store = request.app[SERVICE_KEY].store
    token = request.match_info["token"]
    form = await request.post()
    try:
        score = int(str(form.get("score", "")))
        if not 1 <= score <= 5:
            raise ValueError
    except ValueError:
        return page(both(N_("Choose a score 1-5.")), 400)
    comment = str(form.get("comment", ""))
    outcome, ticket = await asyncio.to_thread(csat.record, store, token, score, comment, "web")
    if outcome == "unknown":
        return page(both(NOT_VALID), 404)
    if outcome == "already":
        return page(thanks(ticket, already=True), 409)
    return page(thanks(ticket, already=False))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/csat/{token}", show)
    app.router.add_post("/csat/{token}", answer)
    add_asset_routes(app, "omnidesk.agents", ["csat.css"])
