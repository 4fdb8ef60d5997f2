"""The agent console: one static page (console.html with console.js and console.css, plain
JS, no build step) served at /console; it talks to the /v1 API with the token the agent
logs in with. Its Content-Security-Policy comes from omnidesk.webguard, like every page's."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

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


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console", console)
    add_asset_routes(app, "omnidesk.agents", ["console.js", "console.css"])
