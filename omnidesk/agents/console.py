"""The agent console: one static page (console.html, plain JS, no build step) served at
/console; it talks to the /v1 API with the token the agent logs in with."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _page() -> str:
    return resources.files("omnidesk.agents").joinpath("static/console.html").read_text("utf-8")


async def console(request: web.Request) -> web.Response:
    return web.Response(
        text=_page(),
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console", console)
