"""Every route of the agents' part in one hook: the /v1 desk API (agents/http.py), the CRM
proxy, the CSAT page, the console and the supervisors' actions. Kept apart from http.py,
which those pages import, so no module imports one that imports it back."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from omnidesk.agents import console, crm_http, csat_page, guides_http, supervise
from omnidesk.agents.http import add_api_routes
from omnidesk.agents.service import AgentService


def add_routes(service: AgentService) -> Callable[[web.Application], None]:
    """The route hook for `Daemon.route_hooks` (or any aiohttp app)."""
    api = add_api_routes(service)

    def hook(app: web.Application) -> None:
        api(app)
        crm_http.add_routes(app.router)
        csat_page.add_routes(app)
        console.add_routes(app)
        supervise.add_routes(app)
        guides_http.add_routes(app)

    return hook
