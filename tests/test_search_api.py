"""GET /v1/search on a real aiohttp server, Redis for tokens and PostgreSQL for records: an
agent finds only tickets of its queues (a supervisor also those it supervises), whatever
reading of the query matched; bad queries are 400, PostgreSQL away is 503."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from omnidesk.agents.routes import add_routes
from omnidesk.db.records import Records
from tests.agentkit import make
from tests.searchkit import add_ticket


@pytest.fixture
def seeded(pg_url: str) -> Iterator[str]:
    with psycopg.connect(pg_url, autocommit=True) as c:
        add_ticket(
            c,
            "OD-2026-000001",
            "الشكاوى المقدمة ضد المحلات",
            queue="complaints",
            customer="C-1",
            identities=(("email", "huda@example.sa"),),
        )
        add_ticket(
            c, "OD-2026-000002", "شكوى ضد محل في السوق", queue="general", customer="C-1", minutes=1
        )
        add_ticket(c, "OD-2026-000003", "شكوى محل تجاري", queue="cr", customer="C-3",
                   cr_number="7001234567", minutes=2)  # fmt: skip
    yield pg_url


@pytest.fixture
async def api(prefix: str, tmp_path: Path, seeded: str) -> AsyncIterator[dict[str, Any]]:
    _, service, _ = make(prefix, tmp_path)
    service.records = Records(seeded)
    app = web.Application()
    add_routes(service)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    tokens = {a: service.tokens.create(a) for a in ("amal", "omar", "boss")}
    yield {"client": client, "service": service, "tokens": tokens}
    await client.close()
    service.records.close()


async def found(api: dict[str, Any], agent: str, q: str, **params: str) -> list[str]:
    r = await api["client"].get(
        "/v1/search",
        params={"q": q, **params},
        headers={"Authorization": f"Bearer {api['tokens'][agent]}"},
    )
    assert r.status == 200, await r.text()
    return [h["ticket"] for h in (await r.json())["hits"]]


async def test_each_agent_sees_only_its_queues(api: dict[str, Any]) -> None:
    assert await found(api, "amal", "شكوى محل") == ["OD-2026-000002"]  # general
    assert await found(api, "omar", "شكوى محل") == ["OD-2026-000001"]  # complaints
    # the supervisor: general, and complaints, which names it; never cr
    assert set(await found(api, "boss", "شكوى محل")) == {"OD-2026-000001", "OD-2026-000002"}
    # every reading is scoped, not only text
    assert await found(api, "amal", "OD-2026-000001") == []
    assert await found(api, "omar", "OD-2026-000001") == ["OD-2026-000001"]
    assert await found(api, "amal", "huda@example.sa") == ["OD-2026-000002"]
    assert await found(api, "amal", "7001234567") == []


async def test_hit_shape_and_snippet(api: dict[str, Any]) -> None:
    r = await api["client"].get(
        "/v1/search",
        params={"q": "شكوى محل", "limit": "5"},
        headers={"Authorization": f"Bearer {api['tokens']['omar']}"},
    )
    (hit,) = (await r.json())["hits"]
    assert hit["matched"] == "text" and hit["queue"] == "complaints"
    assert hit["snippet"] == "الشكاوى المقدمة ضد المحلات"
    assert [hit["snippet"][a:b] for a, b in hit["highlights"]] == ["الشكاوى", "المحلات"]


@pytest.mark.parametrize(
    ("params", "status"),
    [({}, 400), ({"q": ""}, 400), ({"q": "   "}, 400), ({"q": "x" * 201}, 400),
     ({"q": "شكوى", "limit": "many"}, 400)],
)  # fmt: skip
async def test_bad_queries_are_400(
    api: dict[str, Any], params: dict[str, str], status: int
) -> None:
    r = await api["client"].get(
        "/v1/search", params=params, headers={"Authorization": f"Bearer {api['tokens']['amal']}"}
    )
    assert r.status == status and "error" in await r.json()


async def test_no_token_is_401_and_postgresql_away_is_503(api: dict[str, Any]) -> None:
    r = await api["client"].get("/v1/search", params={"q": "شكوى"})
    assert r.status == 401
    api["service"].records.close()
    api["service"].records = Records("postgresql://postgres@127.0.0.1:1/none?connect_timeout=1")
    r = await api["client"].get(
        "/v1/search",
        params={"q": "شكوى"},
        headers={"Authorization": f"Bearer {api['tokens']['amal']}"},
    )
    assert r.status == 503 and r.headers["Retry-After"] == "5"
