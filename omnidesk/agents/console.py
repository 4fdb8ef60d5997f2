"""The agent console: one static page (console.html with console.js and console.css, plain
JS on the /v1 JSON API, no build step) served at /console. Its words come from the gettext
catalogues (omnidesk.i18n): GET /console/messages/<lang>.json hands the page its language's
translations, keyed by msgid, and console.js marks each string with `_()` so that Babel's
extractor (babel.cfg) and tests/test_i18n.py find every one. The Content-Security-Policy
comes from omnidesk.webguard, like every page's."""

from __future__ import annotations

import json
from importlib import resources

from aiohttp import web

from omnidesk.i18n import LANGS, catalog
from omnidesk.webguard import add_asset_routes


def _page() -> str:
    return resources.files("omnidesk.agents").joinpath("static/console.html").read_text("utf-8")


async def console(request: web.Request) -> web.Response:
    return web.Response(
        text=_page(),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


def messages(lang: str) -> dict[str, str]:
    """The language's translations of single messages (plurals are not used by the page)."""
    return {k: v for k, v in catalog(lang).items() if isinstance(k, str) and isinstance(v, str)}


async def console_messages(request: web.Request) -> web.Response:
    lang = request.match_info["lang"]
    if lang not in LANGS:
        raise web.HTTPNotFound(text=f"no language {lang[:20]!r}; use {', '.join(LANGS)}")
    return web.Response(
        text=json.dumps(messages(lang), ensure_ascii=False),
        content_type="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console", console)
    app.router.add_get("/console/messages/{lang}.json", console_messages)
    add_asset_routes(app, "omnidesk.agents", ["console.js", "console.css", "console-guides.js"])
