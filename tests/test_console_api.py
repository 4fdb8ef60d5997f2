"""What the console adds to the /v1 API, on a real aiohttp server over the real Redis: a
canned reply previewed with its placeholders filled, each listed ticket's SLA countdown
(paused by pending), the routing trace of a ticket, and the page's words from the gettext
catalogues (every word the static page names is translated in Arabic and English)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from omnidesk.agents.routes import add_routes
from omnidesk.agents.service import AgentService
from omnidesk.db.erasure import erase_tickets
from omnidesk.i18n import catalog
from omnidesk.runtime import Runtime
from tests.agentkit import agents_config
from tests.test_agents_api import api, auth, open_ticket  # noqa: F401 (fixture)

STATIC = Path(__file__).resolve().parent.parent / "omnidesk" / "agents" / "static"


async def test_a_canned_reply_is_previewed_filled_for_the_ticket(api: dict[str, Any]) -> None:
    client, runtime = api["client"], api["runtime"]
    ticket = open_ticket(runtime, "أحتاج مساعدة في حسابي", email="huda@example.sa", name="هدى")
    h = auth(api["tokens"]["amal"])
    url = f"/v1/tickets/{ticket}/template-preview"
    r = await client.get(url, params={"template": "thanks", "language": "ar"}, headers=h)
    assert r.status == 200, await r.text()
    text = (await r.json())["text"]
    assert text == f"شكرًا هدى، رقم طلبك {ticket}."
    r = await client.get(url, params={"template": "thanks", "language": "en"}, headers=h)
    assert (await r.json())["text"] == f"Thank you هدى, your request is {ticket}."
    r = await client.get(url, params={"template": "nope"}, headers=h)
    assert r.status == 404 and "nope" in (await r.json())["error"]
    r = await client.get(url, params={"template": "thanks", "language": "fr"}, headers=h)
    assert r.status == 400
    r = await client.get(url, headers=h)
    assert r.status == 400 and "template" in (await r.json())["error"]
    omar = auth(api["tokens"]["omar"])  # not in the ticket's queue
    r = await client.get(url, params={"template": "thanks"}, headers=omar)
    assert r.status == 403
    assert api["outbox"].sent == []  # a preview sends nothing


@pytest.fixture
async def clocked(prefix: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The API with the SLA clocks wired in, as the daemon does (agents.plugin)."""
    loaded = agents_config(prefix, tmp_path / "state")
    runtime = Runtime.for_service(loaded)
    service = AgentService(store=runtime.store, config=lambda: loaded.data,
                           send_reply=lambda outbound: None, sla=runtime.clocks)  # fmt: skip
    app = web.Application()
    add_routes(service)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield {"client": client, "runtime": runtime, "service": service,
           "token": service.tokens.create("amal")}  # fmt: skip
    await client.close()


async def test_listed_tickets_carry_their_sla_countdown_paused_by_pending(
    clocked: dict[str, Any],
) -> None:
    client, runtime, service = clocked["client"], clocked["runtime"], clocked["service"]
    ticket = open_ticket(runtime, "سؤال عن الرسوم")
    h = auth(clocked["token"])
    service.assigner.set_presence("amal", "online")
    r = await client.post("/v1/claims", json={}, headers=h)
    assert r.status == 201
    mine = (await (await client.get("/v1/queues", headers=h)).json())["mine"]
    (brief,) = [t for t in mine if t["id"] == ticket]
    assert brief["sla"]["state"] == "running" and brief["sla"]["target"] == "first_response"
    assert 0 < brief["sla"]["remaining_seconds"] <= 4 * 3600  # standard: 4 h business
    listed = (await (await client.get("/v1/tickets", headers=h)).json())["tickets"]
    assert next(t for t in listed if t["id"] == ticket)["sla"]["state"] == "running"

    assert (await client.post(f"/v1/tickets/{ticket}/pending", headers=h)).status == 200
    mine = (await (await client.get("/v1/queues", headers=h)).json())["mine"]
    paused = next(t for t in mine if t["id"] == ticket)["sla"]
    assert paused["state"] == "paused" and paused["paused_reason"], paused
    view = await (await client.get(f"/v1/tickets/{ticket}", headers=h)).json()
    assert view["sla"] and all(c["state"] in ("paused", "stopped") for c in view["sla"])
    assert any("standard" in line for line in view["sla_why"]), view["sla_why"]
    explained = view["sla_explained"]  # the same, as data the console words itself
    assert explained["policy"] == "standard" and explained["calendar"]
    first = next(c for c in explained["clocks"] if c["target"] == "first_response")
    assert first["state"] == "paused" and first["paused_reason"] == "pending_customer"
    assert first["target_seconds"] == 4 * 3600 and first["banked_seconds"] >= 0


async def test_the_routing_trace_names_the_rule_and_the_moves(api: dict[str, Any]) -> None:
    client, runtime = api["client"], api["runtime"]
    complaint = open_ticket(runtime, "لدي شكوى على متجر")
    plain = open_ticket(runtime, "سؤال عام", email="other@example.sa")
    omar, amal = auth(api["tokens"]["omar"]), auth(api["tokens"]["amal"])
    view = await (await client.get(f"/v1/tickets/{complaint}", headers=omar)).json()
    trace = view["routing"]
    assert trace["rule"] == "complaints" and trace["default"] is False
    assert "شكوى" in str(trace["when"]) and trace["then"]["queue"] == "complaints"
    assert [e["type"] for e in trace["events"]][:1] == ["routed"]

    r = await client.post(f"/v1/tickets/{plain}/transfer", headers=amal,
                          json={"queue": "quiet", "reason": "الاختصاص"})  # fmt: skip
    assert r.status == 200
    sara = auth(api["tokens"]["sara"])  # quiet is hers
    trace = (await (await client.get(f"/v1/tickets/{plain}", headers=sara)).json())["routing"]
    assert trace["default"] is True and trace["default_queue"] == "general"
    moved = [e for e in trace["events"] if e["type"] == "transferred"]
    assert moved and moved[0]["reason"] == "الاختصاص" and moved[0]["actor"] == "amal"


async def test_the_page_gets_its_words_from_the_catalogues(api: dict[str, Any]) -> None:
    client = api["client"]
    r = await client.get("/console/messages/ar.json")
    assert r.status == 200
    words = await r.json()
    assert words["Take next (t)"] == "استلام التالية (t)"
    assert words["{h} h {m} min"] == "{h} س {m} د"
    assert (await client.get("/console/messages/fr.json")).status == 404
    html = (STATIC / "console.html").read_text("utf-8")
    named = set(re.findall(r'data-tp?="([^"]+)"', html))
    assert len(named) > 40
    for lang in ("ar", "en"):
        missing = sorted(named - set(catalog(lang)))
        assert not missing, f"{lang}: {missing}"
    page = await (await client.get("/console")).text()
    # no inline script: the page loads only static script files (the CSP allows no other)
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="/static/console.js" defer>',
        '<script src="/static/console-guides.js" defer>',
    ]


async def test_pending_records_its_reason_with_the_change_in_one_request(
    clocked: dict[str, Any],
) -> None:
    client, runtime, service = clocked["client"], clocked["runtime"], clocked["service"]
    ticket = open_ticket(runtime, "أريد تعديل بياناتي")
    h = auth(clocked["token"])
    service.assigner.set_presence("amal", "online")
    assert (await client.post("/v1/claims", json={}, headers=h)).status == 201
    r = await client.post(f"/v1/tickets/{ticket}/pending", headers=h,
                          json={"reason": " بانتظار صورة الهوية "})  # fmt: skip
    assert r.status == 200, await r.text()
    assert (await r.json())["ticket"]["status"] == "pending_customer"
    changed = [f for _, f in runtime.store.r.xrange(runtime.store.key("events"))
               if f.get("type") == "status_changed" and f.get("ticket") == ticket]  # fmt: skip
    assert changed[-1]["to"] == "pending_customer"
    assert changed[-1]["reason"] == "بانتظار صورة الهوية"
    mine = (await (await client.get("/v1/queues", headers=h)).json())["mine"]
    sla = next(t for t in mine if t["id"] == ticket)["sla"]
    assert sla["state"] == "paused" and sla["paused_reason"] == "pending_customer"
    view = await (await client.get(f"/v1/tickets/{ticket}", headers=h)).json()
    assert view["pending_reason"] == "بانتظار صورة الهوية"  # from the event, for the SLA panel
    assert [m for m in view["messages"] if m["direction"] == "note"] == []  # no separate note
    r = await client.post(f"/v1/tickets/{ticket}/pending", headers=h, json={"reason": 7})
    assert r.status == 400 and "reason" in (await r.json())["error"]


def _redis_dump(store: Any) -> bytes:
    """Every value under the store's prefix but the events stream (erasure leaves the stream
    to its trimming), as bytes to search."""
    r, out = store.binary(), []
    for key in r.scan_iter(match=store.prefix.encode() + b":*"):
        if key == store.key("events").encode():
            continue
        kind = r.type(key)
        if kind == b"hash":
            out += [k + b"=" + v for k, v in r.hgetall(key).items()]
        elif kind == b"string":
            out.append(r.get(key) or b"")
        elif kind == b"list":
            out += r.lrange(key, 0, -1)
        elif kind == b"set":
            out += list(r.smembers(key))
        elif kind == b"zset":
            out += r.zrange(key, 0, -1)
    return b"\n".join(out)


async def test_a_pending_reason_stays_out_of_the_sla_state_and_erasure_leaves_no_trace(
    clocked: dict[str, Any], pg_url: str
) -> None:
    client, runtime, service = clocked["client"], clocked["runtime"], clocked["service"]
    ticket = open_ticket(runtime, "أريد تعديل بياناتي")
    h = auth(clocked["token"])
    service.assigner.set_presence("amal", "online")
    assert (await client.post("/v1/claims", json={}, headers=h)).status == 201
    secret = "هوية رقم 1098765432 لسارة"
    r = await client.post(f"/v1/tickets/{ticket}/pending", headers=h, json={"reason": secret})
    assert r.status == 200, await r.text()
    state = runtime.clocks.state(ticket)
    assert state is not None and repr(state).count("pending_customer") >= 2
    assert "1098765432" not in repr(state)  # the SLA state names the status only
    view = await (await client.get(f"/v1/tickets/{ticket}", headers=h)).json()
    assert view["pending_reason"] == secret
    assert "1098765432" not in repr(view["sla_explained"]) + repr(view["sla_why"])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        erase_tickets(conn, [ticket], runtime.store)
    dump = _redis_dump(runtime.store)
    record = runtime.clocks.rb.hget(*runtime.clocks.slot_key(ticket))
    assert record and record in dump  # the scan reaches the SLA state's record
    assert b"1098765432" not in dump
    assert "1098765432" not in repr(runtime.clocks.state(ticket))


async def test_a_second_pending_records_its_new_reason_and_the_clocks_stay_paused(
    clocked: dict[str, Any],
) -> None:
    client, runtime, service = clocked["client"], clocked["runtime"], clocked["service"]
    ticket = open_ticket(runtime, "أريد تعديل بياناتي")
    h = auth(clocked["token"])
    service.assigner.set_presence("amal", "online")
    assert (await client.post("/v1/claims", json={}, headers=h)).status == 201
    path = f"/v1/tickets/{ticket}/pending"
    assert (await client.post(path, headers=h, json={"reason": "بانتظار الهوية"})).status == 200
    r = await client.post(path, headers=h, json={"reason": "بانتظار السجل التجاري"})
    assert r.status == 200, await r.text()
    changed = [f for _, f in runtime.store.r.xrange(runtime.store.key("events"))
               if f.get("type") == "status_changed" and f.get("ticket") == ticket]  # fmt: skip
    assert [(f["from"], f["to"], f.get("reason")) for f in changed[-2:]] == [
        ("open", "pending_customer", "بانتظار الهوية"),
        ("pending_customer", "pending_customer", "بانتظار السجل التجاري"),
    ]
    view = await (await client.get(path.removesuffix("/pending"), headers=h)).json()
    assert view["ticket"]["status"] == "pending_customer"
    assert view["pending_reason"] == "بانتظار السجل التجاري"
    assert all(c["state"] in ("paused", "stopped") for c in view["sla"])
    # pending again without a reason changes nothing and records nothing
    assert (await client.post(path, headers=h, json={})).status == 200
    after = [f for _, f in runtime.store.r.xrange(runtime.store.key("events"))
             if f.get("type") == "status_changed" and f.get("ticket") == ticket]  # fmt: skip
    assert len(after) == len(changed)
    r = await client.post(path, headers=h, json={"reason": "x" * 501})
    got = await r.json()
    assert r.status == 400 and got["code"] == "reason_too_long", got
    assert got["params"] == {"limit": "500"}


async def test_the_desks_common_refusals_carry_a_stable_code(api: dict[str, Any]) -> None:
    client, runtime = api["client"], api["runtime"]
    ticket = open_ticket(runtime, "سؤال عام")
    amal, omar = auth(api["tokens"]["amal"]), auth(api["tokens"]["omar"])
    r = await client.post(f"/v1/tickets/{ticket}/transfer", headers=amal,
                          json={"queue": "quiet", "reason": " "})  # fmt: skip
    assert r.status == 400 and (await r.json())["code"] == "needs_reason"
    r = await client.post(f"/v1/tickets/{ticket}/transfer", headers=amal,
                          json={"queue": "general", "reason": "x"})  # fmt: skip
    got = await r.json()
    assert got["code"] == "already_in_queue"
    assert got["params"] == {"ticket": ticket, "queue": "general"}
    r = await client.get(f"/v1/tickets/{ticket}", headers=omar)
    got = await r.json()
    assert r.status == 403 and got["code"] == "not_your_queue"
    assert got["params"] == {"queue": "general"} and "error" in got
    missing = "OD-2020-999999"
    r = await client.get(f"/v1/tickets/{missing}", headers=amal)
    got = await r.json()
    assert r.status == 404 and got["code"] == "not_found" and got["params"]["ticket"] == missing
    r = await client.post("/v1/tickets/x/pending", headers=amal, data="[]")
    assert r.status == 400 and "code" not in await r.json()  # no code: the message is shown
    refusals = [
        ("transfer", {"queue": "nowhere", "reason": "x"}, "no_queue", {"queue": "nowhere"}),
        ("notes", {"text": "  "}, "empty_text", {}),
        ("notes", {"text": "x" * 20_001}, "text_too_long", {"limit": "20000"}),
    ]
    for action, payload, code, params in refusals:
        r = await client.post(f"/v1/tickets/{ticket}/{action}", headers=amal, json=payload)
        got = await r.json()
        assert (r.status, got.get("code"), got.get("params")) == (400, code, params), got
    runtime.store.set_status(ticket, "closed", "amal")
    r = await client.post(f"/v1/tickets/{ticket}/pending", headers=amal, json={})
    got = await r.json()
    assert got["code"] == "ticket_closed" and got["params"] == {"ticket": ticket}
    words = catalog("ar")
    console = (STATIC / "console.js").read_text("utf-8")
    for code in ("needs_reason", "at_capacity", "not_your_queue", "left_live_desk", "not_found",
                 "ticket_closed", "no_queue", "empty_text", "text_too_long", "reason_too_long",
                 "attachment_unavailable"):  # fmt: skip
        (msgid,) = re.findall(rf'\b{code}: N_\("([^"]+)"\)', console)
        assert words[msgid] != msgid, code  # worded in Arabic


def test_every_unavailable_attachment_reason_is_worded_in_arabic() -> None:
    source = (STATIC.parent / "attachments.py").read_text("utf-8")
    codes = set(re.findall(r'Unavailable\(\s*"(\w+)"', source))
    assert len(codes) >= 8
    console = (STATIC / "console.js").read_text("utf-8")
    words = catalog("ar")
    for code in codes:
        (msgid,) = re.findall(rf'\b{code}: N_\("([^"]+)"\)', console)
        assert words[msgid] != msgid, code
