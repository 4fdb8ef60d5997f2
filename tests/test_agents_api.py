"""The /v1 agents API on a real aiohttp server over the real Redis: tokens (401), queue
access (403), every action with its event and actor, the OpenAPI file against the live
routes, CSAT recorded once (web page and Telegram button), and the config checks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from ruamel.yaml import YAML

from omnidesk.agents.routes import add_routes
from omnidesk.configload import parse_config
from omnidesk.db.records import Records
from omnidesk.errors import ConfigError
from omnidesk.templates import TemplateError, render
from tests.agentkit import AGENTS_CONFIG, make
from tests.storekit import telegram
from tests.storekit import web as web_form

# paths served from PostgreSQL, whose live calls are made where a database is set up
RECORD_PATHS = ("/v1/customers", "/v1/merges", "/v1/cti")  # cti: tests/test_cti.py
OWN_TESTS = {  # tests/test_attachments_api.py, tests/test_events_stream.py, below
    "/v1/tickets/{ticket}/attachments/{attachment}",
    "/v1/events/stream",
    "/v1/tickets/{ticket}/assign",  # a supervisor's: test_a_supervisor_hands_a_ticket...
    "/v1/login",  # needs a directory: tests/test_directory_login.py
}
OPENAPI = Path(__file__).resolve().parent.parent / "omnidesk" / "agents" / "openapi.yaml"


@pytest.fixture
async def api(prefix: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    runtime, service, outbox = make(prefix, tmp_path)
    app = web.Application()
    add_routes(service)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    tokens = {a: service.tokens.create(a) for a in ("amal", "omar", "sara", "boss")}
    yield {
        "client": client,
        "service": service,
        "runtime": runtime,
        "outbox": outbox,
        "tokens": tokens,
    }
    await client.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def open_ticket(runtime: Any, text: str, email: str = "cust@example.sa", **kw: str) -> str:
    report = runtime.process([web_form(text, email=email, **kw)])
    (result,) = report.results
    return result.ticket_id


async def test_missing_invalid_and_revoked_tokens_get_401(api: dict[str, Any]) -> None:
    client, service = api["client"], api["service"]
    r = await client.get("/v1/me")
    assert r.status == 401 and "missing" in (await r.json())["error"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = await client.get("/v1/me", headers=auth("odt_not-a-real-token"))
    assert r.status == 401
    r = await client.get("/v1/me", headers=auth(api["tokens"]["amal"]))
    assert r.status == 200 and (await r.json())["queues"] == ["general"]
    assert service.tokens.revoke("amal") == 1
    r = await client.get("/v1/me", headers=auth(api["tokens"]["amal"]))
    assert r.status == 401 and "revoked" in (await r.json())["error"]
    # hashed at rest: the token itself is nowhere in Redis
    stored = service.store.r.hgetall(service.store.key("auth", "tokens"))
    assert api["tokens"]["omar"] not in json.dumps(stored)


async def test_queue_a_token_gets_403_on_a_queue_b_ticket(api: dict[str, Any]) -> None:
    client, runtime, tokens = api["client"], api["runtime"], api["tokens"]
    general = open_ticket(runtime, "a general question")
    complaint = open_ticket(runtime, "complaint about a shop", email="x@example.sa")
    r = await client.get(f"/v1/tickets/{complaint}", headers=auth(tokens["amal"]))
    assert r.status == 403
    r = await client.post(
        f"/v1/tickets/{complaint}/reply", json={"text": "hi"}, headers=auth(tokens["amal"])
    )
    assert r.status == 403
    assert api["outbox"].sent == []
    r = await client.get(f"/v1/tickets/{general}", headers=auth(tokens["amal"]))
    assert r.status == 200
    r = await client.get("/v1/tickets/OD-1999-000001", headers=auth(tokens["amal"]))
    assert r.status == 404
    # the supervisor (by e-mail on the complaints queue) sees both
    for tid in (general, complaint):
        r = await client.get(f"/v1/tickets/{tid}", headers=auth(tokens["boss"]))
        assert r.status == 200, tid
    r = await client.get("/v1/tickets?queue=complaints", headers=auth(tokens["amal"]))
    assert r.status == 403
    r = await client.post("/v1/claims", json={"queue": "complaints"}, headers=auth(tokens["amal"]))
    assert r.status == 403


async def test_actions_write_events_with_the_actor(api: dict[str, Any]) -> None:
    client, runtime, service = api["client"], api["runtime"], api["service"]
    h = auth(api["tokens"]["amal"])
    first = open_ticket(runtime, "question one", email="same@example.sa", name="Huda")
    second = open_ticket(runtime, "question two", email="same@example.sa")
    other = open_ticket(runtime, "question three", email="someone@example.sa")
    r = await client.post("/v1/claims", json={}, headers=h)
    assert r.status == 201 and (await r.json())["ticket"]["id"] == first
    r = await client.post(f"/v1/tickets/{first}/reply", json={"template": "thanks"}, headers=h)
    assert r.status == 201
    sent = api["outbox"].sent[-1]
    assert sent.text == f"Thank you Huda, your request is {first}."  # English ticket
    assert sent.ticket_id == first and sent.channel.value == "web"
    assert [i.value for i in sent.to] == ["same@example.sa"]
    r = await client.post(f"/v1/tickets/{first}/notes", json={"text": "internal"}, headers=h)
    assert r.status == 201
    r = await client.post(f"/v1/tickets/{first}/tags", json={"add": ["vip", "x"]}, headers=h)
    assert (await r.json())["ticket"]["tags"] == ["vip", "x"]
    r = await client.post(f"/v1/tickets/{first}/tags", json={"remove": ["x"]}, headers=h)
    assert (await r.json())["ticket"]["tags"] == ["vip"]
    r = await client.post(f"/v1/tickets/{first}/priority", json={"priority": "boom"}, headers=h)
    assert r.status == 400
    r = await client.post(f"/v1/tickets/{first}/priority", json={"priority": "high"}, headers=h)
    assert (await r.json())["ticket"]["priority"] == "high"
    r = await client.post(f"/v1/tickets/{first}/pending", headers=h)
    assert (await r.json())["ticket"]["status"] == "pending_customer"
    r = await client.post(f"/v1/tickets/{first}/reopen", headers=h)
    assert (await r.json())["ticket"]["status"] == "open"
    r = await client.post(f"/v1/tickets/{first}/merge", json={"into": other}, headers=h)
    assert r.status == 400 and "different customers" in (await r.json())["error"]
    r = await client.post(f"/v1/tickets/{second}/merge", json={"into": first}, headers=h)
    assert r.status == 200
    view = await (await client.get(f"/v1/tickets/{first}", headers=h)).json()
    assert [m["direction"] for m in view["messages"]] == ["in", "in", "out", "note"]  # by time
    assert view["messages"][2]["delivery"] == "queued"
    assert view["customer"]["name"] == "Huda"
    assert service.store.get_ticket(second).status.value == "closed"
    r = await client.post(f"/v1/tickets/{first}/transfer", json={"queue": "quiet"}, headers=h)
    assert r.status == 400  # a reason is required
    r = await client.post(
        f"/v1/tickets/{first}/transfer",
        json={"queue": "quiet", "reason": "theirs"},
        headers=h,
    )
    assert (await r.json())["ticket"]["queue"] == "quiet"
    assert service.assigner.load("amal") == 0  # the transfer freed the slot
    r = await client.get(f"/v1/tickets/{first}", headers=h)
    assert r.status == 403  # no longer amal's queue
    history = service.desk.history(first)
    kinds = {e["type"]: e["actor"] for e in history}
    for kind in ("assigned", "replied", "noted", "tagged", "priority_changed", "merged"):
        assert kinds[kind] == "amal", kind
    transferred = next(e for e in history if e["type"] == "transferred")
    assert transferred["actor"] == "amal" and transferred["reason"] == "theirs"
    r = await client.post(f"/v1/tickets/{first}/reply", data=b"{nope", headers=h)
    assert r.status in (400, 403)


def _openapi_operations() -> list[tuple[str, str, dict[str, Any]]]:
    doc = YAML(typ="safe").load(OPENAPI.read_text("utf-8"))
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                ops.append((path, method.upper(), op))
    return ops


PUBLIC_PATHS = ("/v1/intake", "/v1/status", "/status", "/guides")


async def test_openapi_matches_the_live_routes(api: dict[str, Any], pg_url: str) -> None:
    client, runtime, service = api["client"], api["runtime"], api["service"]
    service.records = Records(pg_url)  # GET /v1/search reads PostgreSQL
    live = {
        (route.resource.canonical, route.method)
        for route in client.server.app.router.routes()
        if route.resource is not None
    }
    # the public door (web form, track my request) is the daemon's, not the agents' app:
    # tests/test_status_api.py checks those routes against the daemon
    ops = [op for op in _openapi_operations() if not op[0].startswith(PUBLIC_PATHS)]
    assert len(ops) >= 18
    for path, method, _ in ops:
        assert (path, method) in live, f"{method} {path} documented but not served"
    documented = {(p, m) for p, m, _ in ops}
    for path, method in live:
        if path.startswith("/v1/") and method != "HEAD" and not path.startswith("/v1/intake"):
            assert (path, method) in documented, f"{method} {path} served but not documented"

    h = auth(api["tokens"]["amal"])
    service.assigner.set_presence("amal", "online")
    for path, method, op in ops:
        if path.startswith(RECORD_PATHS):
            continue  # they need PostgreSQL: tests/test_customers_api.py calls them
        if path in OWN_TESTS:
            continue  # need an attachment or a stream: called in their own test files
        ticket = open_ticket(runtime, f"question for {method} {path}", email="api@example.sa")
        other = open_ticket(runtime, "the same customer again", email="api@example.sa")
        if path.endswith("/reopen"):
            await client.post(f"/v1/tickets/{ticket}/resolve", headers=h)
        token = ""
        if path.startswith("/csat/"):
            await client.post(f"/v1/tickets/{ticket}/resolve", headers=h)
            token = service.store.r.hget(service.store.key("ticket", ticket), "csat_token")
        url = path.replace("{ticket}", ticket).replace("{token}", token)
        examples = {p["name"]: p["example"] for p in op.get("parameters", []) if "example" in p}
        if examples:
            url += "?" + urlencode(examples)
        codes = {int(c) for c in op["responses"]}
        kwargs: dict[str, Any] = {}
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            example = json.dumps(content["application/json"].get("example", {}))
            kwargs["json"] = json.loads(example.replace("$OTHER", other))
        elif "application/x-www-form-urlencoded" in content:
            kwargs["data"] = content["application/x-www-form-urlencoded"]["example"]
        secured = op.get("security", [{"bearer": []}]) != []
        r = await client.request(method, url, headers=h if secured else {}, **kwargs)
        assert r.status in codes, f"{method} {path}: {r.status} {await r.text()}"
        assert r.status < 300, f"{method} {path}: {r.status} {await r.text()}"
        if secured:
            r = await client.request(method, url, **kwargs)
            assert r.status == 401 and 401 in codes, f"{method} {path} without a token"
    service.records.close()


async def test_csat_by_email_link_recorded_once_with_comment(api: dict[str, Any]) -> None:
    client, runtime, service = api["client"], api["runtime"], api["service"]
    h = auth(api["tokens"]["amal"])
    tid = open_ticket(runtime, "please help with my account")
    await client.post("/v1/claims", json={}, headers=h)
    r = await client.post(f"/v1/tickets/{tid}/resolve", headers=h)
    assert (await r.json())["ticket"]["status"] == "resolved"
    survey = api["outbox"].sent[-1]
    token = service.store.r.hget(service.store.key("ticket", tid), "csat_token")
    assert f"http://csat.test/csat/{token}?score=5" in survey.text
    assert "buttons" not in survey.meta
    page = await client.get(f"/csat/{token}?score=4")
    body = await page.text()
    assert page.status == 200 and 'value="4" checked' in body
    assert service.store.r.hget(service.store.key("ticket", tid), "csat_score") is None  # GET
    r = await client.post(f"/csat/{token}", data={"score": "4", "comment": "<b>جيد</b>"})
    assert r.status == 200 and "Thank you" in await r.text()
    r = await client.post(f"/csat/{token}", data={"score": "1", "comment": "changed my mind"})
    text = await r.text()
    assert r.status == 409 and "already recorded" in text
    view = service.desk.view(service.agent("amal"), tid)
    assert view["ticket"]["csat_score"] == "4" and view["ticket"]["csat_comment"] == "<b>جيد</b>"
    events = [e for e in view["history"] if e["type"].startswith("csat")]
    assert [e["type"] for e in events] == ["csat_sent", "csat", "csat_refused"]
    r = await client.get("/csat/not-a-token")
    assert r.status == 404


async def test_csat_telegram_buttons_answer_recorded_once_opens_no_ticket(
    api: dict[str, Any],
) -> None:
    runtime, service = api["runtime"], api["service"]
    report = runtime.process([telegram(1, 777, 10, "عندي استفسار عام")])
    tid = report.results[0].ticket_id
    boss = service.agent("boss")
    service.desk.resolve(boss, tid)
    survey = api["outbox"].sent[-1]
    buttons = json.loads(survey.meta["buttons"])
    assert len(buttons) == 5 and buttons[4][1].startswith("csat:") and survey.meta["chat_id"]
    count = service.store.ticket_count()

    def press(update_id: int, data: str) -> Any:
        payload = {
            "update_id": update_id,
            "callback_query": {
                "id": f"q{update_id}",
                "from": {"id": 777, "is_bot": False, "first_name": "Sara"},
                "data": data,
                "message": {"message_id": 11, "date": 1_780_000_100, "chat": {"id": 777}},
            },
        }
        raw = telegram(update_id, 777, 11, "")
        raw.payload = json.dumps(payload).encode()
        return runtime.process([raw])

    press(2, buttons[4][1])
    press(3, buttons[0][1])  # a second answer: refused, nothing changes
    assert service.store.ticket_count() == count  # no ticket opened by the presses
    fields = service.store.r.hmget(service.store.key("ticket", tid), "csat_score", "status")
    assert fields == ["5", "resolved"]
    stats = service.store.r.hgetall(service.store.key("stats"))
    assert stats["csat_answers:recorded"] == "1" and stats["csat_answers:already"] == "1"


async def test_no_survey_when_the_queue_has_csat_off_or_the_address_is_no_reply(
    api: dict[str, Any],
) -> None:
    runtime, service = api["runtime"], api["service"]
    sara = service.agent("sara")
    quiet = open_ticket(runtime, "please answer quietly")
    robot = open_ticket(runtime, "a general note", email="no-reply@shop.example")
    before = len(api["outbox"].sent)
    service.desk.resolve(sara, quiet)
    service.desk.resolve(sara, robot)
    assert len(api["outbox"].sent) == before


def test_templates_cannot_reach_attributes_and_config_names_bad_references() -> None:
    values = {"customer_name": "هدى", "ticket_id": "T"}
    assert render("{customer_name} {{x}} {ticket_id}", values) == "هدى {x} T"
    for bad in ("{ticket.__class__}", "{customer_name[0]}", "{customer_name!r}", "{secret}"):
        with pytest.raises(TemplateError):
            render(bad, {})
    text = AGENTS_CONFIG.read_text("utf-8")
    broken = text.replace("queues: [complaints], languages: [ar]", "queues: [nowhere]").replace(
        "your request is {ticket_id}", "your request is {ticket.__init__}"
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(broken, AGENTS_CONFIG)
    problems = exc.value.problems
    lines = broken.splitlines()
    queue_line = next(i for i, line in enumerate(lines, 1) if "[nowhere]" in line)
    assert any(
        p.startswith(f"{AGENTS_CONFIG}:{queue_line}: agents[1].queues[0]: queue 'nowhere'")
        for p in problems
    ), problems
    assert any("templates.thanks.en: unknown placeholder {ticket.__init__}" in p for p in problems)


async def test_queue_counts_and_sla_risk_from_due_times(api: dict[str, Any]) -> None:
    from datetime import UTC, datetime, timedelta

    client, runtime, service = api["client"], api["runtime"], api["service"]
    late = open_ticket(runtime, "first general question")
    soon = open_ticket(runtime, "second general question")
    open_ticket(runtime, "third general question, no SLA clock yet")
    now = datetime.now(UTC)
    service.store.set_due(late, now - timedelta(minutes=5))
    service.store.set_due(soon, now + timedelta(minutes=20))
    r = await client.get("/v1/queues", headers=auth(api["tokens"]["amal"]))
    (general,) = (await r.json())["queues"]
    assert (general["queue"], general["waiting"]) == ("general", 3)
    assert (general["breached"], general["at_risk"]) == (1, 1)


def whatsapp_body(message: dict[str, Any]) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "966110000000", "phone_number_id": "PN1"},
        "contacts": [{"profile": {"name": "Sara"}, "wa_id": "966501234567"}],
        "messages": [{"from": "966501234567", "timestamp": "1780000000", **message}],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body, ensure_ascii=False).encode()


async def test_csat_whatsapp_interactive_reply_is_recorded_not_a_ticket(
    api: dict[str, Any],
) -> None:
    from datetime import UTC, datetime

    from omnidesk.model import Channel, RawPayload

    runtime, service = api["runtime"], api["service"]

    def raw(message: dict[str, Any]) -> RawPayload:
        return RawPayload(
            channel=Channel.WHATSAPP,
            account="wa",
            payload=whatsapp_body(message),
            received_at=datetime.now(UTC),
        )

    text = {"id": "wamid.1", "type": "text", "text": {"body": "استفسار عام عن خدماتكم"}}
    (opened,) = runtime.process([raw(text)]).results
    service.desk.resolve(service.agent("boss"), opened.ticket_id)
    survey = api["outbox"].sent[-1]
    assert survey.channel == Channel.WHATSAPP and survey.meta["wa_id"] == "966501234567"
    label, data = json.loads(survey.meta["buttons"])[2]
    assert label == "٣"  # Arabic ticket: Arabic digits on the buttons
    press = {
        "id": "wamid.2",
        "type": "interactive",
        "context": {"id": "wamid.survey"},
        "interactive": {"type": "button_reply", "button_reply": {"id": data, "title": label}},
    }
    count = service.store.ticket_count()
    report = runtime.process([raw(press)])
    assert report.results == [] and service.store.ticket_count() == count
    fields = service.store.r.hmget(service.store.key("ticket", opened.ticket_id), "csat_score")
    assert fields == ["3"]


async def test_resolving_twice_sends_one_survey(api: dict[str, Any]) -> None:
    runtime, service = api["runtime"], api["service"]
    tid = open_ticket(runtime, "a question to resolve twice")
    amal = service.agent("amal")
    service.desk.resolve(amal, tid)
    service.desk.resolve(amal, tid)
    surveys = [o for o in api["outbox"].sent if o.meta.get("csat") == "1"]
    assert [o.ticket_id for o in surveys] == [tid]


async def test_the_dashboard_takes_a_supervisors_token_only(
    api: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from omnidesk.agents.plugin import AgentsPlugin
    from omnidesk.plugins import Plugins
    from omnidesk.reports.dashboard import Dashboard, route_hook

    monkeypatch.delenv("OMNIDESK_DASHBOARD_TOKEN", raising=False)
    runtime, service = api["runtime"], api["service"]
    agents = AgentsPlugin()
    agents.service = service
    dashboard = Dashboard(runtime.store, runtime.config.data, authorize=Plugins([agents]).authorize)
    app = web.Application()
    route_hook(dashboard)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        boss = await client.get("/v1/dashboard.json", headers=auth(api["tokens"]["boss"]))
        agent = await client.get("/v1/dashboard.json", headers=auth(api["tokens"]["amal"]))
        nobody = await client.get("/v1/dashboard.json")
        assert boss.status == 200 and "queues" in json.dumps(await boss.json())
        assert agent.status == 403  # a valid token, but not a supervisor's: said so
        assert (await agent.json())["error"] == "not_supervisor"
        assert nobody.status == 401
        service.tokens.revoke("boss")
        again = await client.get("/v1/dashboard.json", headers=auth(api["tokens"]["boss"]))
        assert again.status == 401
    finally:
        await client.close()


async def test_a_supervisor_hands_a_ticket_to_an_agent_of_its_queue(api: dict[str, Any]) -> None:
    client, runtime, service = api["client"], api["runtime"], api["service"]
    store = service.store
    boss, amal = auth(api["tokens"]["boss"]), auth(api["tokens"]["amal"])
    tid = open_ticket(runtime, "a question for the general queue")
    assert store.r.zscore(store.key("queue", "general", "waiting"), tid) is not None

    r = await client.post(f"/v1/tickets/{tid}/assign", json={"agent": "amal"}, headers=boss)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["ticket"]["assignee"] == "amal" and body["previous"] is None
    assert body["ticket"]["status"] == "open"
    assert store.r.zscore(store.key("queue", "general", "waiting"), tid) is None
    assert store.r.zrange(store.key("agent", "amal", "open"), 0, -1) == [tid]

    r = await client.post(f"/v1/tickets/{tid}/assign", json={"agent": "sara"}, headers=boss)
    assert r.status == 200 and (await r.json())["previous"] == "amal"
    assert store.r.zcard(store.key("agent", "amal", "open")) == 0
    assert store.r.zrange(store.key("agent", "sara", "open"), 0, -1) == [tid]
    assigned = [f for _, f in store.events() if f["type"] == "assigned"][-1]
    assert (assigned["agent"], assigned["actor"], assigned["how"], assigned["previous"]) == (
        "sara",
        "boss",
        "supervisor",
        "amal",
    )

    cases = [
        (amal, {"agent": "sara"}, 403, "only a supervisor"),
        (boss, {"agent": "omar"}, 400, "does not work queue 'general'"),
        (boss, {"agent": "nobody"}, 400, "no agent 'nobody'"),
        (boss, {"agent": "sara"}, 400, "already sara's"),
        (boss, {}, 400, "agent: required"),
    ]
    for headers, payload, status, message in cases:
        r = await client.post(f"/v1/tickets/{tid}/assign", json=payload, headers=headers)
        assert r.status == status and message in (await r.json())["error"], payload
    r = await client.post("/v1/tickets/OD-NOPE/assign", json={"agent": "amal"}, headers=boss)
    assert r.status == 404
    # omar (capacity 3) holds three complaints: a fourth is refused, not forced on him
    complaints = [open_ticket(runtime, f"شكوى رقم {i}") for i in range(4)]
    omar = service.agent("omar")
    handed = [service.assigner.hand_to(t, omar, "boss", store.get_ticket(t).queue).outcome
              for t in complaints[:3]]  # fmt: skip
    assert handed == ["assigned"] * 3
    # a colleague's transfer between the access check and the hand-over: refused, not
    # handed to an agent without access to the ticket's new queue
    tid2 = open_ticket(runtime, "another question for the general queue")
    read = store.get_ticket(tid2)
    assert read.queue == "general"
    store.move(tid2, "complaints", "sara", event="transferred", reason="belongs there")
    assert service.assigner.hand_to(tid2, service.agent("amal"), "boss", read.queue).outcome == (
        "moved"
    )
    assert store.get_ticket(tid2).assignee in (None, "")
    r = await client.post(f"/v1/tickets/{complaints[3]}/assign", json={"agent": "omar"},
                          headers=boss)  # fmt: skip
    assert r.status == 409 and "at capacity" in (await r.json())["error"]
    assert store.r.zcard(store.key("agent", "omar", "open")) == 3


async def test_a_supervisors_refusals_carry_codes_the_dashboard_words(
    api: dict[str, Any],
) -> None:
    from omnidesk.reports import dashtext

    client, runtime, service = api["client"], api["runtime"], api["service"]
    store, boss = service.store, auth(api["tokens"]["boss"])
    tid = open_ticket(runtime, "a question for the general queue")
    assert (await client.post(f"/v1/tickets/{tid}/assign", json={"agent": "sara"},
                              headers=boss)).status == 200  # fmt: skip
    complaints = [open_ticket(runtime, f"شكوى رقم {i}") for i in range(4)]
    for t in complaints[:3]:
        assert service.assigner.hand_to(t, service.agent("omar"), "boss", "complaints").outcome
    closed = open_ticket(runtime, "another question")
    store.set_status(closed, "closed", "boss")
    cases = [
        (tid, "omar", 400, "not_their_queue", {"agent": "omar", "queue": "general"}),
        (tid, "nobody", 400, "no_agent", {"agent": "nobody"}),
        (tid, "sara", 400, "already_assigned", {"ticket": tid, "agent": "sara"}),
        (complaints[3], "omar", 409, "agent_full", {"agent": "omar", "capacity": 3}),
        (closed, "amal", 409, "ticket_closed", {"ticket": closed}),
    ]
    ar = dashtext.texts(dashtext.lang_translator("ar"))["refusals"]
    for ticket, agent, status, code, params in cases:
        r = await client.post(f"/v1/tickets/{ticket}/assign", json={"agent": agent}, headers=boss)
        got = await r.json()
        assert (r.status, got.get("code"), got.get("params")) == (status, code, params), got
        assert ar[code] != dashtext.REFUSALS[code], code  # worded in Arabic for the page
    assert "moved_meanwhile" in ar and "{ticket}" in ar["moved_meanwhile"]


def test_a_templates_queue_is_the_public_title(prefix: str, tmp_path: Path) -> None:
    """`{queue}` in an agent's template reaches the customer: the queue's public_title in
    the reply's language, never the internal queue id."""
    from dataclasses import replace

    from omnidesk.agents.service import AgentService
    from omnidesk.runtime import Runtime
    from tests.agentkit import Outbox, agents_config

    loaded = agents_config(prefix, tmp_path / "state")
    queues = dict(loaded.data.queues)
    queues["general"] = queues["general"].model_copy(
        update={"public_title": {"ar": "خدمة المراجعين", "en": "Visitor services"}}
    )
    where = {"ar": "طلبك لدى {queue}", "en": "Your request is with {queue}"}
    data = loaded.data.model_copy(
        update={"queues": queues, "templates": {**loaded.data.templates, "where": where}}
    )
    runtime = Runtime.from_config(replace(loaded, data=data))
    service = AgentService(store=runtime.store, config=lambda: data, send_reply=Outbox(),
                           public_url="http://csat.test")  # fmt: skip
    tid = open_ticket(runtime, "سؤال عن السجل")
    ticket = runtime.store.get_ticket(tid)
    amal = next(a for a in data.agents if a.id == "amal")
    assert ticket.queue == "general"
    assert service.desk.render_template("where", ticket, amal, "ar") == "طلبك لدى خدمة المراجعين"
    assert service.desk.render_template("where", ticket, amal, "en") == (
        "Your request is with Visitor services"
    )


def test_tags_written_meanwhile_are_kept(
    prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """desk.tag reads and writes the tags under WATCH (Redis.transaction): a write between
    its read and its write makes it read again instead of overwriting that write."""
    import redis.client

    runtime, service, _ = make(prefix, tmp_path)
    tid = open_ticket(runtime, "سؤال عن السجل")
    queue = runtime.store.get_ticket(tid).queue
    agent = next(a for a in service.config().agents if queue in service.roster().queues_of(a))
    key = runtime.store.key("ticket", tid)
    read = redis.client.Pipeline.hget
    writes: list[str] = []

    def read_then_someone_writes(pipe: Any, *args: Any) -> Any:
        value = read(pipe, *args)
        if not writes:  # once: another agent tags the ticket right after our read
            writes.append("other")
            runtime.store.r.hset(key, "tags", '["other"]')
        return value

    monkeypatch.setattr(redis.client.Pipeline, "hget", read_then_someone_writes)
    ticket = service.desk.tag(agent, tid, ["vip"], [])
    assert writes == ["other"]
    assert sorted(ticket.tags) == ["other", "vip"]
