"""`GET /v1/reports` on the real routes (aiohttp's test server, figures from PostgreSQL): a
supervisor gets the figures in any format and language; an unknown queue, region or agent,
a bad date or format is a 400 naming it; no token, a 401; PostgreSQL away, a 503 saying so."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from omnidesk.configload import load_config
from omnidesk.db.records import Records
from omnidesk.reports.dashboard import Dashboard
from omnidesk.reports.http import route_hook
from omnidesk.store import Store
from tests.reportkit import history, seeded_database

REDIS_URL = "redis://127.0.0.1:6379/0"
TOKEN = "sup-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PERIOD = {"from": "2026-02-27", "to": "2026-03-20"}


@pytest.fixture(scope="module")
def database(pg_template):
    """40 generated tickets' events in PostgreSQL, where the reports are computed."""
    with seeded_database(pg_template, history(3, 40)) as url:
        records = Records(url)
        yield records
        records.close()


@pytest.fixture
async def client(monkeypatch, database):
    monkeypatch.setenv("OMNIDESK_DASHBOARD_TOKEN", TOKEN)
    store = Store.from_url(REDIS_URL, f"test-rephttp-{uuid.uuid4().hex[:10]}")
    app = web.Application()
    route_hook(Dashboard(store, load_config("queue_config.yaml").data), database.connection)(app)
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


async def test_postgresql_away_is_a_503_saying_so(monkeypatch):
    """No figures are made up from anywhere else: a clear error and a time to retry."""
    monkeypatch.setenv("OMNIDESK_DASHBOARD_TOKEN", TOKEN)
    store = Store.from_url(REDIS_URL, f"test-rephttp-{uuid.uuid4().hex[:10]}")
    away = Records("postgresql://postgres@127.0.0.1:1/od_absent?connect_timeout=2")
    app = web.Application()
    route_hook(Dashboard(store, load_config("queue_config.yaml").data), away.connection)(app)
    try:
        async with TestClient(TestServer(app)) as c:
            resp = await c.get("/v1/reports", params=PERIOD, headers=AUTH)
            body = await resp.json()
    finally:
        away.close()
        store.delete_all()
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert body["code"] == "records_unavailable"
    assert "postgresql unavailable at 127.0.0.1:1/od_absent" in body["error"]


async def test_without_a_supervisor_token_it_is_refused(client):
    resp = await client.get("/v1/reports", params=PERIOD)
    assert resp.status == 401
    resp = await client.get("/v1/reports", params=PERIOD, headers={"Authorization": "Bearer x"})
    assert resp.status == 401


@pytest.fixture
async def scoped_client(monkeypatch, database):
    """The operator's token, plus supervisors of one queue and of two (the agents part's
    `authorize`, stood in for by a token table)."""
    from omnidesk.reports.dashboard import BadToken, Viewer, env_authorize

    monkeypatch.setenv("OMNIDESK_DASHBOARD_TOKEN", TOKEN)
    store = Store.from_url(REDIS_URL, f"test-rephttp-{uuid.uuid4().hex[:10]}")
    dashboard = Dashboard(store, load_config("queue_config.yaml").data)
    viewers = {"riyadh-sup": ("branch-riyadh",), "two-sup": ("branch-riyadh", "branch-jeddah")}

    def authorize(token: str) -> Viewer:
        if token in viewers:
            return Viewer(token, viewers[token])
        if token.startswith("sup-"):
            return env_authorize(token)
        raise BadToken("invalid token")

    dashboard.authorize = authorize
    app = web.Application()
    route_hook(dashboard, database.connection)(app)
    async with TestClient(TestServer(app)) as c:
        yield c
    store.delete_all()


async def test_a_supervisor_sees_only_its_own_queues(scoped_client):
    c = scoped_client
    riyadh = {"Authorization": "Bearer riyadh-sup"}
    resp = await c.get("/v1/reports", params={**PERIOD, "queue": "branch-jeddah"}, headers=riyadh)
    assert resp.status == 403 and "branch-jeddah" in (await resp.json())["error"]
    for param, value in (("region", "jeddah"), ("agent", "omar")):
        resp = await c.get("/v1/reports", params={**PERIOD, param: value}, headers=riyadh)
        assert resp.status == 403, (param, value)
    # no queue filter: the one queue in scope, not every queue
    mine = await (await c.get("/v1/reports", params=PERIOD, headers=riyadh)).json()
    operator = {**PERIOD, "queue": "branch-riyadh"}
    expected = await (await c.get("/v1/reports", params=operator, headers=AUTH)).json()
    everything = await (await c.get("/v1/reports", params=PERIOD, headers=AUTH)).json()
    assert mine["totals"]["opened"] == expected["totals"]["opened"]
    assert mine["totals"]["opened"] < everything["totals"]["opened"] == 40
    resp = await c.get("/v1/reports", params={**PERIOD, "agent": "khalid"}, headers=riyadh)
    assert resp.status == 200
    # several queues and no filter: exactly their figures added up, nothing of a third
    two = {"Authorization": "Bearer two-sup"}
    resp = await c.get("/v1/reports", params=PERIOD, headers=two)
    assert resp.status == 200
    both = await resp.json()
    each = [await (await c.get("/v1/reports", params={**PERIOD, "queue": q}, headers=AUTH)).json()
            for q in ("branch-riyadh", "branch-jeddah", "backoffice")]  # fmt: skip
    for figure in ("opened", "resolved", "replies", "transfers"):
        assert both["totals"][figure] == each[0]["totals"][figure] + each[1]["totals"][figure]
    assert both["backlog"]["end"] == each[0]["backlog"]["end"] + each[1]["backlog"]["end"]
    assert each[2]["totals"]["opened"] > 0 and set(both["by"]["queue"]) == {
        "branch-riyadh", "branch-jeddah"}  # fmt: skip
    assert both["totals"]["opened"] == 40 - each[2]["totals"]["opened"]
    assert both["filters"] == {"queue": ["branch-jeddah", "branch-riyadh"]}
    # one of them named: that queue only; the page names both queues
    resp = await c.get("/v1/reports", params={**PERIOD, "queue": "branch-jeddah"}, headers=two)
    assert (await resp.json())["totals"] == each[1]["totals"]
    arabic = {**PERIOD, "format": "html", "lang": "ar"}
    resp = await c.get("/v1/reports", params=arabic, headers=two)
    page = await resp.text()
    assert resp.status == 200 and "backoffice" not in page
    assert 'فرع جدة - Jeddah branch</bdi>، <bdi dir="auto">فرع الرياض - Riyadh branch' in page


def _gone(pid: int) -> bool:
    """No such process, or one already dead (a zombie waiting for its reaper)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_a_hung_chromium_is_killed_whole_and_answered_503(client, tmp_path, monkeypatch):
    import time

    import omnidesk.reports.pdf as pdf
    from tests.services import wait_for

    pids = tmp_path / "pids"
    fake = tmp_path / "chromium"
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $$ $! > {pids}\nwait\n")
    fake.chmod(0o755)
    monkeypatch.setenv("OMNIDESK_CHROMIUM", str(fake))
    monkeypatch.setattr(pdf, "TIMEOUT_S", 2)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    began = time.monotonic()
    resp = await client.get("/v1/reports", params={**PERIOD, "format": "pdf"}, headers=AUTH)
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert "within 2 s" in (await resp.json())["error"]
    assert time.monotonic() - began < 2 + pdf.WAIT_S
    shell, child = (int(p) for p in pids.read_text().split())
    assert wait_for(lambda: _gone(shell) and _gone(child), timeout=5)
    assert not list(tmp_path.glob("omnidesk-pdf-*"))


async def test_prints_beyond_the_slots_wait_then_get_a_503(client, monkeypatch):
    import omnidesk.reports.pdf as pdf

    monkeypatch.setattr(pdf, "WAIT_S", 0.2)
    slots = pdf.print_slots()
    for _ in range(pdf.PRINTS):  # two prints running
        await asyncio.wait_for(slots.acquire(), timeout=1)
    try:
        resp = await client.get("/v1/reports", params={**PERIOD, "format": "pdf"}, headers=AUTH)
        assert resp.status == 503 and resp.headers["Retry-After"]
        assert "printing" in (await resp.json())["error"]
    finally:
        for _ in range(pdf.PRINTS):
            slots.release()


async def test_waiting_prints_leave_the_shared_threads_free(client, tmp_path, monkeypatch):
    """Eight prints at once with a Chromium that prints only when told: two print, six wait
    for a slot, and meanwhile the loop's default executor (6 threads on the daemon's 2 cores:
    the desk API, logins and the scheduler use it) still runs work at once."""
    from concurrent.futures import ThreadPoolExecutor

    started, go = tmp_path / "started", tmp_path / "go"
    fake = tmp_path / "chromium"
    fake.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in --print-to-pdf=*) out="${a#--print-to-pdf=}";; esac; done\n'
        f"echo $$ >> {started}\n"
        f"while [ ! -e {go} ]; do sleep 0.05; done\n"
        'printf "%%PDF-1.4 stand-in" > "$out"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("OMNIDESK_CHROMIUM", str(fake))
    loop = asyncio.get_running_loop()
    shared = ThreadPoolExecutor(max_workers=6)  # the default executor's size on 2 cores
    loop.set_default_executor(shared)
    params = {**PERIOD, "format": "pdf"}
    prints = [asyncio.ensure_future(client.get("/v1/reports", params=params, headers=AUTH))
              for _ in range(8)]  # fmt: skip
    try:
        deadline = time.monotonic() + 20  # polled on the loop: its threads may be all taken
        while not (started.exists() and len(started.read_text().split()) == 2):
            assert time.monotonic() < deadline, "two stand-in prints never started"
            await asyncio.sleep(0.05)
        # were the waiting prints holding the shared threads, this would run only after
        # `go` (touched below): it could never finish in time, however slow the machine
        await asyncio.wait_for(asyncio.to_thread(lambda: None), timeout=15)
        assert len(started.read_text().split()) == 2  # no more browsers than slots
    finally:
        go.touch()
        answers = await asyncio.gather(*prints)
    assert [r.status for r in answers] == [200] * 8
    assert all(body.startswith(b"%PDF") for body in [await r.read() for r in answers])
    assert len(started.read_text().split()) == 8
