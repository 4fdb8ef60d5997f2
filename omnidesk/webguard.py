"""What every HTTP response of the daemon carries for the browser's protection, and the
static scripts and styles its pages load.

The pages (console, dashboard, CSAT form) show customer text. Their policy allows scripts
and styles only from files this daemon serves: a `<script>` or `onerror=` that ever got
into a page through customer text would not run. `frame-ancestors 'none'` and
`X-Frame-Options` stop another site from framing a page to trick a click.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-src 'self'",  # the console's PDF previews (attachments are served sandboxed)
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css"}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: runs for every response, aiohttp's own errors included; a
    header a handler set itself is kept."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def install(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)


def add_asset_routes(app: web.Application, package: str, names: list[str]) -> None:
    """GET /static/<name> for each named file of `package`'s static/ folder (a fixed list:
    no path from the URL ever reaches the file system)."""
    for name in names:
        suffix = name[name.rfind(".") :]
        text = resources.files(package).joinpath(f"static/{name}").read_text("utf-8")
        app.router.add_get(f"/static/{name}", _asset_handler(text, ASSET_TYPES[suffix]))


def _asset_handler(
    text: str, content_type: str
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def asset(request: web.Request) -> web.Response:
        return web.Response(
            text=text,
            content_type=content_type,
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    return asset
