"""`GET /v1/reports` on the real routes (aiohttp's test server, Redis rollups): a
supervisor gets the figures in any format and language; an unknown queue, region or agent,
a bad date or format is a 400 naming it; no token, a 401."""

from __future__ import annotations

import json
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from omnidesk.configload import load_config
from omnidesk.reports.dashboard import Dashboard
from omnidesk.reports.http import route_hook
from omnidesk.store import Store
from tests.reportkit import history

REDIS_URL = "redis://127.0.0.1:6379/0"
TOKEN = "sup-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PERIOD = {"from": "2026-02-27", "to": "2026-03-20"}


@pytest.fixture
async def client(monkeypatch):
    monkeypatch.setenv("OMNIDESK_DASHBOARD_TOKEN", TOKEN)
    store = Store.from_url(REDIS_URL, f"test-rephttp-{uuid.uuid4().hex[:10]}")
    pipe = store.r.pipeline(transaction=False)
    for ev in history(3, 40):
        pipe.xadd(store.key("events"), ev)
    pipe.execute()
    app = web.Application()
    route_hook(Dashboard(store, load_config("queue_config.yaml").data))(app)
    async with TestClient(TestServer(app)) as c:
        yield c
    store.delete_all()


async def test_a_supervisor_gets_json_and_arabic_html(client):
    resp = await client.get("/v1/reports", params=PERIOD, headers=AUTH)
    assert resp.status == 200
    assert json.loads(await resp.text())["totals"]["opened"] == 40
    arabic = {**PERIOD, "format": "html", "lang": "ar", "digits": "arab"}
    resp = await client.get("/v1/reports", headers=AUTH, params=arabic)
    page = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert 'dir="rtl"' in page and "تقرير الأداء" in page and "٤٠" in page


@pytest.mark.parametrize(
    ("param", "value"),
    [("queue", "nope"), ("region", "atlantis"), ("agent", "ghost"), ("channel", "fax"),
     ("from", "yesterday"), ("format", "docx"), ("lang", "fr")],
)  # fmt: skip
async def test_bad_input_is_a_400_naming_it(client, param, value):
    resp = await client.get("/v1/reports", params={**PERIOD, param: value}, headers=AUTH)
    assert resp.status == 400
    assert repr(value) in (await resp.json())["error"]


async def test_without_a_supervisor_token_it_is_refused(client):
    resp = await client.get("/v1/reports", params=PERIOD)
    assert resp.status == 401
    resp = await client.get("/v1/reports", params=PERIOD, headers={"Authorization": "Bearer x"})
    assert resp.status == 401
