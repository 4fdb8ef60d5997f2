"""The customer record in the agents' API: /v1/customers/{customer}[/export|/merge|/erase|
/tags] and /v1/merges/{merge}/undo, over PostgreSQL (`AgentService.records`).

Scope: an agent sees a customer only if one of the customer's tickets is in one of its
queues, and then only those tickets; any other customer is 404, as an unknown one is, so the
API does not tell who exists. A supervisor is scoped the same way (its queues and those that
name it as supervisor), and alone may export or erase a customer it can see (403
otherwise). A merge needs both customers in scope; undoing one, its target.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from omnidesk.agents.bodies import MergeBody, TagsBody
from omnidesk.agents.http import SERVICE_KEY, _run, current_agent, ok, parsed
from omnidesk.agents.roster import Forbidden
from omnidesk.agents.service import AgentService
from omnidesk.config import AgentConfig
from omnidesk.db import customers, erasure, merging
from omnidesk.db.connect import RecordsUnavailable


def scope(service: AgentService, agent: AgentConfig) -> list[str]:
    """The queues whose tickets the agent may see: a supervisor's own and those that name
    it as supervisor, as everywhere else (only the operator's CLI sees every queue)."""
    return service.roster().queues_of(agent)


def supervisor_only(agent: AgentConfig, what: str) -> None:
    if agent.role != "supervisor":
        raise Forbidden(f"only a supervisor may {what} a customer")


def _records(service: AgentService) -> Any:
    if service.records is None:
        raise RecordsUnavailable("no PostgreSQL configured for the customer record")
    return service.records


def _show(service: AgentService, agent: AgentConfig, ident: str) -> dict[str, Any]:
    with _records(service).connection() as conn:
        return customers.show(conn, ident, scope(service, agent))


def _export(service: AgentService, agent: AgentConfig, ident: str) -> dict[str, Any]:
    supervisor_only(agent, "export")
    with _records(service).connection() as conn:
        customers.show(conn, ident, scope(service, agent))  # 404 outside its queues
        return customers.export(conn, ident, agent.id)


def _erase(service: AgentService, agent: AgentConfig, ident: str) -> dict[str, Any]:
    supervisor_only(agent, "erase")
    state_dir = service.config().service.state_dir
    with _records(service).connection() as conn:
        customers.show(conn, ident, scope(service, agent))  # 404 outside its queues
        return erasure.erase_customer(conn, ident, agent.id, service.store, state_dir)


def _merge(service: AgentService, agent: AgentConfig, ident: str, into: str) -> dict[str, Any]:
    queues = scope(service, agent)
    with _records(service).connection() as conn:
        if queues is not None:  # both in scope, else 404 as if unknown
            customers.show(conn, ident, queues)
            customers.show(conn, into, queues)
        return merging.merge(conn, ident, into, agent.id, service.store)


def _undo(service: AgentService, agent: AgentConfig, merge_id: str) -> dict[str, Any]:
    queues = scope(service, agent)
    with _records(service).connection() as conn:
        if queues is not None:
            row = None
            if merge_id.isdigit():
                row = conn.execute(
                    "SELECT target_id FROM customer_merges WHERE id = %s", (int(merge_id),)
                ).fetchone()
            if row is None:
                raise customers.UnknownCustomer(f"no merge {merge_id}")
            customers.show(conn, str(row[0]), queues)
        return merging.unmerge(conn, merge_id, agent.id, service.store)


def _tags(
    service: AgentService, agent: AgentConfig, ident: str, add: list[Any], remove: list[Any]
) -> dict[str, Any]:
    with _records(service).connection() as conn:
        cid = customers.show(conn, ident, scope(service, agent))["customer"]["id"]
        tags = customers.set_tags(conn, cid, add, remove, agent.id, service.store)
    return {"customer": cid, "tags": tags}


async def get_customer(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    return ok(await _run(_show, service, agent, request.match_info["customer"]))


async def export_customer(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    return ok(await _run(_export, service, agent, request.match_info["customer"]))


async def erase_customer(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    return ok(await _run(_erase, service, agent, request.match_info["customer"]))


async def merge_customer(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    into = (await parsed(request, MergeBody)).into
    done = await _run(_merge, service, agent, request.match_info["customer"], into)
    return ok(done, status=201)


async def undo_merge(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    return ok(await _run(_undo, service, agent, request.match_info["merge"]))


async def customer_tags(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    agent = await current_agent(request)
    data = await parsed(request, TagsBody)
    done = await _run(_tags, service, agent, request.match_info["customer"], data.add, data.remove)
    return ok(done)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/customers/{customer}", get_customer)
    router.add_get("/v1/customers/{customer}/export", export_customer)
    router.add_post("/v1/customers/{customer}/merge", merge_customer)
    router.add_post("/v1/customers/{customer}/erase", erase_customer)
    router.add_post("/v1/customers/{customer}/tags", customer_tags)
    router.add_post("/v1/merges/{merge}/undo", undo_merge)
