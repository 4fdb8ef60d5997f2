"""Every route of the agents' part in one hook: the /v1 desk API (agents/http.py), the CRM
proxy, the CSAT page, the console and the supervisors' actions. Kept apart from http.py,
which those pages import, so no module imports one that imports it back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from omnidesk.agents import console, crm_http, csat_page, cti, guides_http, login, supervise
from omnidesk.agents.cti_desk import CtiDesk
from omnidesk.agents.http import add_api_routes
from omnidesk.agents.service import AgentService


def add_routes(service: AgentService, runtime: Any = None) -> Callable[[web.Application], None]:
    """The route hook for `Daemon.route_hooks` (or any aiohttp app); `runtime` is the
    intake calls open tickets through (omnidesk.runtime.Runtime; None: the calls API
    answers 503 where a ticket is asked for)."""
    api = add_api_routes(service)

    def hook(app: web.Application) -> None:
        api(app)
        crm_http.add_routes(app.router)
        csat_page.add_routes(app)
        console.add_routes(app)
        supervise.add_routes(app)
        cti.add_routes(app, CtiDesk(service, runtime))
        login.add_routes(app)
        guides_http.add_routes(app)

    return hook
