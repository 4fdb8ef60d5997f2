"""The customers' side of the guides: /guides (Arabic first, right to left, with a search
box), /guides/<slug> (one guide, in its own language and direction), and
/guides/suggest?q= (JSON: the guides matching what a customer types in the web form,
answered with CORS to the form's allowed origins, as /v1/intake/web is).

Staff-only guides are never shown here. Pages are Jinja2 with autoescape; a guide's body is
markdown-it's safe HTML (omnidesk.guides.render). The guides come from the config in force
(`daemon.loaded`), so a SIGHUP shows the new ones at the next request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from omnidesk.api import DAEMON_KEY
from omnidesk.guides.library import GuideLibrary, library_for
from omnidesk.guides.loader import SLUG, Guide
from omnidesk.guides.render import excerpt, to_html
from omnidesk.i18n import N_, translator
from omnidesk.webform import cors, preflight
from omnidesk.webguard import add_asset_routes

if TYPE_CHECKING:
    from omnidesk.configload import LoadedConfig


class ConfiguredDaemon(Protocol):
    """What the guides use of the daemon: the config in force (a SIGHUP replaces it)."""

    loaded: LoadedConfig


PAGES = Environment(
    loader=PackageLoader("omnidesk.guides", "pages"),
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
AR, EN = translator("ar"), translator("en")
GUIDES_KEY: web.AppKey[Callable[[], GuideLibrary]] = web.AppKey("guides")
SUGGEST_PATH = "/guides/suggest"
MAX_QUERY = 500  # characters of the customer's text looked at
SUGGEST_LIMIT = 3
LIST_LIMIT = 50  # guides a search on /guides shows
PUBLIC_AUDIENCES = ("consumers", "businesses")


def both(msgid: str) -> dict[str, str]:
    return {"ar": AR._(msgid), "en": EN._(msgid)}


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def library(request: web.Request) -> GuideLibrary:
    return request.app[GUIDES_KEY]()


async def index(request: web.Request) -> web.Response:
    """Every public guide, Arabic ones first; with ?q=, those matching it, best first."""
    lib = library(request)
    query = request.query.get("q", "")[:MAX_QUERY].strip()
    audience = request.query.get("audience")  # consumers or businesses; else every public one
    audience = audience if audience in PUBLIC_AUDIENCES else None
    if query:
        found = lib.index.search(query, limit=LIST_LIMIT, public_only=True, audience=audience)
        shown = [h.guide for h in found]
    else:
        shown = sorted(
            (g for g in lib.guides if g.public and audience in (None, *g.meta.audience)),
            key=lambda g: g.meta.title,
        )
    sections = [
        {"lang": "ar", "dir": "rtl", "heading": AR._(N_("Guides in Arabic")),
         "guides": [g for g in shown if g.meta.lang == "ar"]},
        {"lang": "en", "dir": "ltr", "heading": EN._(N_("Guides in English")),
         "guides": [g for g in shown if g.meta.lang == "en"]},
    ]  # fmt: skip
    html = PAGES.get_template("index.html").render(
        title=both(N_("Awareness guides")),
        search=both(N_("Search the guides")),
        go=both(N_("Search")),
        nothing=both(N_("No guide matches your search.")),
        query=query,
        sections=sections,
    )
    return _html(html)


async def show(request: web.Request) -> web.Response:
    lib = library(request)
    slug = request.match_info["slug"]
    guide = lib.by_slug.get(slug) if SLUG.match(slug) else None
    if guide is None or not guide.public:
        none = both(N_("No such guide."))
        return _html(f"<!doctype html><p>{none['ar']}</p><p>{none['en']}</p>", 404)
    other = lib.by_slug.get(guide.meta.translation or "")
    tr = AR if guide.meta.lang == "ar" else EN
    html = PAGES.get_template("guide.html").render(
        guide=guide,
        dir="rtl" if guide.meta.lang == "ar" else "ltr",
        back=tr._(N_("All guides")),
        translation=other if other is not None and other.public else None,
        body=Markup(to_html(guide.body)),  # safe: markdown-it with raw HTML off
    )
    return _html(html)


def suggestion(lib: GuideLibrary, guide: Guide) -> dict[str, Any]:
    """A guide as the web form and the console show it: title, summary and link."""
    return {
        "slug": guide.slug,
        "title": guide.meta.title,
        "lang": guide.meta.lang,
        "summary": guide.meta.summary or excerpt(guide.body, 160),
        "url": lib.url(guide),
    }


async def suggest(request: web.Request) -> web.Response:
    """GET /guides/suggest?q=...&lang=ar|en : up to three public guides for the text."""
    lib = library(request)
    text = request.query.get("q", "")[:MAX_QUERY]
    lang = request.query.get("lang") or None
    if lang not in (None, "ar", "en"):
        return web.json_response({"error": "lang: ar or en"}, status=400)
    hits = lib.index.search(text, limit=SUGGEST_LIMIT, lang=lang, public_only=True)
    body = {"guides": [suggestion(lib, h.guide) for h in hits]}
    return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def add_routes(app: web.Application) -> None:
    """The public guide routes; the library is the one of the daemon's config in force."""
    daemon = cast(ConfiguredDaemon, app[DAEMON_KEY])  # the Daemon, whose view api types
    app[GUIDES_KEY] = lambda: library_for(daemon.loaded)
    # read the guides now and at each accepted SIGHUP, not in the first request after it
    library_for(daemon.loaded)
    reload_hooks = getattr(daemon, "reload_hooks", None)
    if isinstance(reload_hooks, list):
        reload_hooks.append(library_for)
    app.on_response_prepare.append(cors((SUGGEST_PATH,)))
    app.router.add_get("/guides", index)
    app.router.add_get(SUGGEST_PATH, suggest)
    app.router.add_route("OPTIONS", SUGGEST_PATH, preflight)
    app.router.add_get("/guides/{slug}", show)
    add_asset_routes(app, "omnidesk.guides", ["guides.css", "guide-suggest.js"])
