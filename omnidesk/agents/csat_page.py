"""The small page e-mail surveys link to: GET /csat/<token> shows the 1-5 form (with the
score from the link preselected), POST records the answer once. Bilingual, escaped."""

from __future__ import annotations

import asyncio
from html import escape

from aiohttp import web

from omnidesk.agents import csat
from omnidesk.agents.http import SERVICE_KEY
from omnidesk.webguard import add_asset_routes

PAGE = """<!doctype html>
<html lang="ar" dir="rtl"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>تقييم الخدمة - Rate our service</title>
<link rel="stylesheet" href="/static/csat.css"></head>
<body>{body}</body></html>"""


def page(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=PAGE.format(body=body), status=status, content_type="text/html", charset="utf-8"
    )


def thanks(ticket: str, already: bool) -> str:
    if already:
        return (
            f"<p>شكرًا لك، تقييمك للطلب {escape(ticket)} مسجل لدينا مسبقًا.</p>"
            f'<p dir="ltr">Thank you: your rating for {escape(ticket)} was already recorded.</p>'
        )
    return '<p>شكرًا لك على تقييمك.</p><p dir="ltr">Thank you for your feedback.</p>'


async def show(request: web.Request) -> web.Response:
    store = request.app[SERVICE_KEY].store
    token = request.match_info["token"]
    survey = await asyncio.to_thread(csat.lookup, store, token)
    if survey is None:
        return page("<p>الرابط غير صالح أو منتهي.</p><p dir='ltr'>This link is not valid.</p>", 404)
    if "csat_score" in survey:
        return page(thanks(survey["ticket"], already=True))
    chosen = request.query.get("score", "")
    options = "".join(
        f'<label><input type="radio" name="score" value="{n}"'
        f"{' checked' if str(n) == chosen else ''} required> {n}</label>"
        for n in range(1, 6)
    )
    body = (
        f"<h1>كيف تقيّم خدمتنا؟ <span dir='ltr'>How did we do?</span></h1>"
        f"<p>{escape(survey['ticket'])}</p>"
        f'<form method="post"><p>{options}</p>'
        '<p><label for="comment">ملاحظات (اختياري) - Comment (optional)</label></p>'
        '<textarea id="comment" name="comment" dir="auto" maxlength="2000"></textarea>'
        '<p><button type="submit">إرسال - Send</button></p></form>'
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
        return page("<p>اختر تقييمًا من 1 إلى 5.</p><p dir='ltr'>Choose a score 1-5.</p>", 400)
    comment = str(form.get("comment", ""))
    outcome, ticket = await asyncio.to_thread(csat.record, store, token, score, comment, "web")
    if outcome == "unknown":
        return page("<p>الرابط غير صالح أو منتهي.</p><p dir='ltr'>This link is not valid.</p>", 404)
    if outcome == "already":
        return page(thanks(ticket, already=True), 409)
    return page(thanks(ticket, already=False))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/csat/{token}", show)
    app.router.add_post("/csat/{token}", answer)
    add_asset_routes(app, "omnidesk.agents", ["csat.css"])
