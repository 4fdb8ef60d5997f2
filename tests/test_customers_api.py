"""The customer record in the agents' API, on a real aiohttp server over the real Redis and
PostgreSQL: scoped by the agent's queues (404 outside them, only their tickets inside),
export and erase for supervisors only (403), merge and undo, tags, and every documented
/v1/customers and /v1/merges operation called as its OpenAPI example says."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from ruamel.yaml import YAML

from omnidesk.agents.routes import add_routes
from omnidesk.db import merging
from omnidesk.db.records import Records
from tests.agentkit import make
from tests.crmkit import mirror
from tests.storekit import web as web_form

OPENAPI = Path(__file__).resolve().parent.parent / "omnidesk" / "agents" / "openapi.yaml"
KAMAL = {"id": "kamal", "name": "Kamal", "queues": ["cr"], "languages": ["ar"]}


@pytest.fixture
async def api(prefix: str, tmp_path: Path, pg_url: str) -> AsyncIterator[dict[str, Any]]:
    runtime, service, _ = make(prefix, tmp_path, extra_agents=[KAMAL])
    service.records = Records(pg_url)
    app = web.Application()
    add_routes(service)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    tokens = {a: service.tokens.create(a) for a in ("amal", "omar", "boss", "kamal")}
    yield {"client": client, "service": service, "runtime": runtime, "tokens": tokens}
    await client.close()
    service.records.close()


def person(api: dict[str, Any], email: str, *texts: str) -> tuple[str, list[str]]:
    """A customer with one ticket per text, through the real intake, on record in PG."""
    runtime, service = api["runtime"], api["service"]
    results = [runtime.process([web_form(t, email=email, name="Laila")]).results[0] for t in texts]
    with service.records.connection() as conn:
        for r in results:
            mirror(conn, service.store, r.ticket_id)
    return results[0].customer_id, [r.ticket_id for r in results]


def auth(api: dict[str, Any], agent: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api['tokens'][agent]}"}


async def test_an_agent_sees_a_customer_only_through_its_queues(api: dict[str, Any]) -> None:
    client = api["client"]
    both, (general, complaint) = person(
        api, "both@example.sa", "a general question", "complaint about a shop"
    )
    only_general, _ = person(api, "gen@example.sa", "another general question")

    r = await client.get(f"/v1/customers/{only_general}", headers=auth(api, "omar"))
    assert r.status == 404 and "in your queues" in (await r.json())["error"]
    r = await client.get(f"/v1/customers/{both}", headers=auth(api, "omar"))
    assert r.status == 200
    doc = await r.json()
    assert [t["id"] for t in doc["tickets"]] == [complaint]
    assert doc["customer"]["name"] == "Laila"
    r = await client.get("/v1/customers/both@example.sa", headers=auth(api, "amal"))
    assert [t["id"] for t in (await r.json())["tickets"]] == [general]
    r = await client.get(f"/v1/customers/{both}", headers=auth(api, "boss"))
    assert {t["id"] for t in (await r.json())["tickets"]} == {general, complaint}
    r = await client.get("/v1/customers/C-99999999", headers=auth(api, "boss"))
    assert r.status == 404
    r = await client.get(f"/v1/customers/{both}")
    assert r.status == 401
    # a supervisor is scoped too: boss supervises general and complaints, not cr
    cr_only, _ = person(api, "cr@example.sa", "السجل التجاري: تجديد")
    r = await client.get(f"/v1/customers/{cr_only}", headers=auth(api, "boss"))
    assert r.status == 404
    r = await client.get(f"/v1/customers/{cr_only}/export", headers=auth(api, "boss"))
    assert r.status == 404
    r = await client.get(f"/v1/customers/{cr_only}", headers=auth(api, "kamal"))
    assert r.status == 200

    # export and erase: supervisors only
    r = await client.get(f"/v1/customers/{both}/export", headers=auth(api, "amal"))
    assert r.status == 403
    r = await client.get(f"/v1/customers/{both}/export", headers=auth(api, "boss"))
    exported = await r.json()
    assert r.status == 200 and len(exported["messages"]) == 2
    r = await client.post(f"/v1/customers/{both}/erase", headers=auth(api, "amal"))
    assert r.status == 403
    r = await client.post(f"/v1/customers/{both}/erase", headers=auth(api, "boss"))
    assert r.status == 200 and (await r.json())["tickets"] == 2
    r = await client.get(f"/v1/customers/{both}", headers=auth(api, "boss"))
    doc = await r.json()
    assert doc["customer"]["name"] == "" and doc["customer"]["erased_at"]
    assert doc["identities"] == [] and len(doc["tickets"]) == 2
    with api["service"].records.connection() as conn:
        actions = conn.execute("SELECT actor, action FROM audit ORDER BY id").fetchall()
    assert actions == [("boss", "export"), ("boss", "erase")]


async def test_merge_undo_and_tags_in_scope_only(api: dict[str, Any]) -> None:
    client, store = api["client"], api["service"].store
    a, _ = person(api, "a@example.sa", "first question")
    b, (b_ticket,) = person(api, "b@example.sa", "second question")
    c, _ = person(api, "c@example.sa", "complaint about a shop")

    r = await client.post(
        f"/v1/customers/{a}/tags", json={"add": ["vip"]}, headers=auth(api, "omar")
    )
    assert r.status == 404
    r = await client.post(
        f"/v1/customers/{a}/tags", json={"add": ["vip", "gov"]}, headers=auth(api, "amal")
    )
    assert r.status == 200 and (await r.json())["tags"] == ["vip", "gov"]
    assert store.get_customer(a).tags == ["vip", "gov"]
    r = await client.post(f"/v1/customers/{a}/tags", json={"add": "vip"}, headers=auth(api, "amal"))
    assert r.status == 400

    r = await client.post(f"/v1/customers/{a}/merge", json={"into": c}, headers=auth(api, "amal"))
    assert r.status == 404  # c has no ticket in amal's queues
    r = await client.post(f"/v1/customers/{b}/merge", json={"into": b}, headers=auth(api, "amal"))
    assert r.status == 400
    r = await client.post(f"/v1/customers/{b}/merge", json={"into": a}, headers=auth(api, "amal"))
    assert r.status == 201
    merge = (await r.json())["merge"]
    assert store.r.hget(store.key("identity"), "email:b@example.sa") == a
    assert store.get_ticket(b_ticket).customer_id == a
    r = await client.post(f"/v1/merges/{merge}/undo", headers=auth(api, "kamal"))
    assert r.status == 404
    r = await client.post(f"/v1/merges/{merge}/undo", headers=auth(api, "amal"))
    assert r.status == 200 and (await r.json())["tickets"] == [b_ticket]
    assert store.r.hget(store.key("identity"), "email:b@example.sa") == b
    r = await client.post(f"/v1/merges/{merge}/undo", headers=auth(api, "amal"))
    assert r.status == 400 and "already undone" in (await r.json())["error"]
    r = await client.post("/v1/merges/nope/undo", headers=auth(api, "boss"))
    assert r.status == 404


async def test_postgres_away_is_503(api: dict[str, Any]) -> None:
    service = api["service"]
    person(api, "d@example.sa", "a question")
    service.records.close()
    service.records = Records("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=1")
    r = await api["client"].get("/v1/customers/d@example.sa", headers=auth(api, "boss"))
    assert r.status == 503 and r.headers["Retry-After"] == "5"


def _record_operations() -> list[tuple[str, str, dict[str, Any]]]:
    doc = YAML(typ="safe").load(OPENAPI.read_text("utf-8"))
    return [
        (path, method.upper(), op)
        for path, item in doc["paths"].items()
        if path.startswith(("/v1/customers", "/v1/merges"))
        for method, op in item.items()
        if method in ("get", "post")
    ]


async def test_every_documented_customer_operation_answers_as_documented(
    api: dict[str, Any],
) -> None:
    client = api["client"]
    ops = _record_operations()
    assert len(ops) == 6
    for n, (path, method, op) in enumerate(ops):
        cid, _ = person(api, f"doc{n}@example.sa", f"question {n}")
        into, _ = person(api, f"into{n}@example.sa", f"other question {n}")
        merge = ""
        if "{merge}" in path:
            with api["service"].records.connection() as conn:
                merge = str(merging.merge(conn, cid, into, "boss", api["service"].store)["merge"])
        url = path.replace("{customer}", cid).replace("{merge}", merge)
        kwargs: dict[str, Any] = {}
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            example = json.dumps(content["application/json"].get("example", {}))
            kwargs["json"] = json.loads(example.replace("$INTO", into))
        codes = {int(c) for c in op["responses"]}
        r = await client.request(method, url, headers=auth(api, "boss"), **kwargs)
        assert r.status in codes and r.status < 300, f"{method} {path}: {await r.text()}"
        r = await client.request(method, url, **kwargs)
        assert r.status == 401 and 401 in codes, f"{method} {path} without a token"
