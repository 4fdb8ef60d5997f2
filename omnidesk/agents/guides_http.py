"""The agents' side of the awareness guides (omnidesk.guides), under /v1 with their token:

- GET /v1/guides?q=&limit= : guides matching `q` (all audiences, staff guides included),
  best first, each with its link and an excerpt to insert into a reply;
- GET /v1/tickets/{ticket}/guide-suggestions : the guides most relevant to what the
  customer wrote on a ticket the agent may view, in the ticket's language.

The library is the one of the config in force (omnidesk.guides.pages.GUIDES_KEY).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from omnidesk.agents.desk import BadRequest
from omnidesk.agents.http import SERVICE_KEY, current_agent, ok
from omnidesk.guides.index import Hit
from omnidesk.guides.library import GuideLibrary
from omnidesk.guides.pages import GUIDES_KEY, MAX_QUERY
from omnidesk.guides.render import excerpt
from omnidesk.model import Direction
from omnidesk.text import detect_language

EXCERPT_CHARS = 400
THREAD_CHARS = 4000  # of the customer's messages, oldest first, that a suggestion reads


NO_GUIDES = GuideLibrary([], "")


def _library(request: web.Request) -> GuideLibrary:
    """The guides of the config in force; none when the app serves no guides (the agents'
    routes alone, as some embedders and tests build it)."""
    source = request.app.get(GUIDES_KEY)
    return source() if source is not None else NO_GUIDES


def hit_view(library: GuideLibrary, hit: Hit) -> dict[str, Any]:
    meta = hit.guide.meta
    return {
        "slug": hit.guide.slug,
        "title": meta.title,
        "lang": meta.lang,
        "service": meta.service,
        "tags": meta.tags,
        "audience": meta.audience,
        "summary": meta.summary,
        "url": library.url(hit.guide),
        "excerpt": excerpt(hit.guide.body, EXCERPT_CHARS),
        "score": round(hit.score, 3),
    }


async def search_guides(request: web.Request) -> web.Response:
    await current_agent(request)
    query = request.query.get("q", "").strip()
    if not query:
        raise BadRequest("q: required")
    if len(query) > MAX_QUERY:
        raise BadRequest(f"q: at most {MAX_QUERY} characters")
    try:
        limit = min(50, max(1, int(request.query.get("limit", "10"))))
    except ValueError:
        raise BadRequest("limit: must be a number") from None
    library = _library(request)
    hits = library.search(query, limit=limit)
    return ok({"query": query, "guides": [hit_view(library, h) for h in hits]})


async def guide_suggestions(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    ticket = request.match_info["ticket"]
    messages = await asyncio.to_thread(service.desk.messages, agent, ticket)
    asked = " ".join(
        f"{m.subject} {m.text}"
        for m in sorted(messages, key=lambda m: m.created_at)
        if m.direction == Direction.IN
    )[:THREAD_CHARS]
    language = detect_language(asked).value
    library = _library(request)
    hits = library.suggest(asked, language)
    return ok({"ticket": ticket, "language": language,
               "guides": [hit_view(library, h) for h in hits]})  # fmt: skip


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/guides", search_guides)
    app.router.add_get("/v1/tickets/{ticket}/guide-suggestions", guide_suggestions)
