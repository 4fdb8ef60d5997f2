"""Calls from the communication centre, end to end on a real aiohttp server, Redis and
PostgreSQL: a scripted PBX posts a day of signed call events (new, answered, hang-up,
missed, voicemail). The caller's number finds the WhatsApp customer; the answering agent's
console stream gets the screen-pop and its details; the agent opens a ticket, attaches a
call and logs one; missed calls and a voicemail outside hours become callback tickets with
running SLA clocks; in hours a missed call is only logged; the call report counts it all.
A forged or stale signature gets 401 and nothing is kept."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from omnidesk.agents.cti_sign import signature
from omnidesk.agents.routes import add_routes
from omnidesk.agents.service import AgentService
from omnidesk.agents.supervise import supervisor_authorize
from omnidesk.calendar import build_calendars
from omnidesk.config import (
    AgentConfig,
    CalendarConfig,
    CtiConfig,
    QueueConfig,
    Rule,
    SlaPolicyConfig,
)
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from omnidesk.event_hub import visible
from omnidesk.model import Channel, RawPayload
from omnidesk.reports.calls import branches_of, call_figures
from omnidesk.reports.calls import route_hook as call_report_routes
from omnidesk.reports.dashboard import Dashboard
from omnidesk.runtime import Runtime
from omnidesk.viewers import env_authorize
from tests.agentkit import AGENTS_CONFIG, Outbox, agents_config
from tests.clikit import omnidesk
from tests.test_agents_api import whatsapp_body
from tests.test_events_stream import subscribe

SECRET = "pbx-secret-for-tests-only"
RIYADH = ZoneInfo("Asia/Riyadh")
DAY = datetime(2026, 11, 29, tzinfo=RIYADH)  # a Sunday, no holiday
CALLER = "966501234567"  # the WhatsApp customer's wa_id


def configured(prefix: str, tmp: Path) -> Any:
    loaded = agents_config(prefix, tmp / "state")
    data = loaded.data
    agents = [
        a.model_copy(update={"extension": {"amal": "2001", "omar": "2002"}.get(a.id)})
        for a in data.agents
    ]
    boss = next(a for a in agents if a.id == "boss")
    agents[agents.index(boss)] = boss.model_copy(update={"queues": ["general", "callbacks"]})
    update = {
        "agents": [AgentConfig(**a.model_dump()) for a in agents],
        "calendars": {"centre": CalendarConfig(
            working_days=["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
            slots=["08:00-16:00"], holidays=None)},
        "sla_policies": {**data.sla_policies,
                         "callback": SlaPolicyConfig(first_response="2h", resolution="1d")},
        "queues": {**data.queues,
                   "callbacks": QueueConfig(kind="contact_centre", calendar="centre",
                                            region="riyadh", sla_policy="standard")},
        # a call is a channel the rules know: phone calls get a tag and a higher priority
        "rules": [Rule(id="calls", when={"channel": "phone"},
                       then={"tags": ["call"], "priority": "high", "continue": True}),
                  *data.rules],
        "cti": CtiConfig(pbx={"riyadh-pbx": {"secret_env": "OMNIDESK_TEST_PBX_SECRET",
                                              "branch": "riyadh"}},
                         callback_queue="callbacks", callback_sla_policy="callback"),
    }  # fmt: skip
    return replace(loaded, data=data.model_copy(update=update))


@pytest.fixture
async def centre(
    prefix: str, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, Any]]:
    monkeypatch.setenv("OMNIDESK_TEST_PBX_SECRET", SECRET)
    loaded = configured(prefix, tmp_path)
    records = Records(pg_url)
    runtime = Runtime.for_service(loaded, records=records)
    service = AgentService(store=runtime.store, config=lambda: loaded.data, send_reply=Outbox(),
                           records=records, archive=runtime.archive)  # fmt: skip
    app = web.Application()
    add_routes(service, runtime)(app)
    dashboard = Dashboard(runtime.store, loaded.data,
                          authorize=supervisor_authorize(service, env_authorize))  # fmt: skip
    call_report_routes(dashboard, records.connection)(app)
    server = TestServer(app)
    await server.start_server()
    session = aiohttp.ClientSession(base_url=str(server.make_url("/")))
    tokens = {a: service.tokens.create(a) for a in ("amal", "omar", "boss")}
    yield {"session": session, "service": service, "runtime": runtime, "records": records,
           "tokens": tokens, "pg_url": pg_url}  # fmt: skip
    await session.close()
    await server.close()
    records.close()


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {"X-Omnidesk-Pbx": "riyadh-pbx", "X-Omnidesk-Timestamp": stamp,
            "X-Omnidesk-Signature": "sha256=" + signature(secret.encode(), stamp, body),
            "Content-Type": "application/json"}  # fmt: skip


async def post(c: dict[str, Any], event: dict[str, Any], **kw: Any) -> aiohttp.ClientResponse:
    body = json.dumps(event).encode()
    return await c["session"].post("/v1/cti/events", data=body, headers=signed(body, **kw))


def ev(n: int, kind: str, call: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"e{n}", "type": kind, "call_id": call, "at": at.isoformat(), **extra}


def count(records: Records, table: str) -> int:
    with records.connection() as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


async def test_a_day_of_calls(centre: dict[str, Any]) -> None:
    c, service, runtime = centre, centre["service"], centre["runtime"]
    amal = {"Authorization": f"Bearer {c['tokens']['amal']}"}
    question = {"id": "wamid.1", "type": "text", "text": {"body": "سؤال عن موعد التجديد"}}
    raw = RawPayload(channel=Channel.WHATSAPP, account="wa", received_at=datetime.now(UTC),
                     payload=whatsapp_body(question))  # fmt: skip
    (earlier,) = runtime.process([raw]).results
    stream = await subscribe(c["session"], amal)

    # 10:00 a call comes in from the WhatsApp customer's number, written locally
    r = await post(c, ev(1, "new", "c1", DAY.replace(hour=10), caller="0501234567"))
    assert r.status == 201, await r.text()
    r = await post(c, ev(2, "answered", "c1", DAY.replace(hour=10, second=20), extension="2001"))
    assert (r.status, (await r.json())["state"]) == (201, "answered")
    _, pop = await stream.until(lambda f: f[1] == "call_answered", timeout=5)
    assert pop[2]["call"] == "riyadh-pbx:c1" and pop[2]["agent"] == "amal"
    r = await c["session"].get("/v1/cti/calls/riyadh-pbx:c1", headers=amal)
    shown = await r.json()
    assert shown["customer"]["id"] == earlier.customer_id
    assert shown["call"]["caller"] == f"+{CALLER}"
    assert [t["id"] for t in shown["open_tickets"]] == [earlier.ticket_id]
    assert shown["recent"][0]["channel"] == "whatsapp"
    omar = {"Authorization": f"Bearer {c['tokens']['omar']}"}
    r = await c["session"].get("/v1/cti/calls/riyadh-pbx:c1", headers=omar)
    assert r.status == 404  # another agent's call is not omar's to see
    r = await post(c, ev(3, "hangup", "c1", DAY.replace(hour=10, minute=5, second=20)))
    assert (await r.json())["state"] == "completed"
    # the agent opens a ticket for it; pressing again opens nothing more
    path = "/v1/cti/calls/riyadh-pbx:c1/disposition"
    r = await c["session"].post(path, json={"action": "ticket"}, headers=amal)
    assert r.status == 200, await r.text()
    call = (await r.json())["call"]
    opened = call["ticket_id"]
    assert call["disposition"] == "ticket" and opened != earlier.ticket_id
    r = await c["session"].post(path, json={"action": "ticket"}, headers=amal)
    assert (await r.json())["call"]["ticket_id"] == opened
    r = await c["session"].post(path, json={"action": "log"}, headers=amal)
    assert r.status == 400 and (await r.json())["code"] == "call_disposed"
    ticket = service.store.get_tickets([opened])[0]
    assert ticket.channel == Channel.PHONE and ticket.customer_id == earlier.customer_id
    assert ticket.queue == "general" and runtime.clocks.summary(opened)
    assert ticket.tags == ["call"] and ticket.priority == "high" and ticket.rule is None
    assert ticket.assignee == "amal"  # opened by her for her call, in her queue: hers

    # 11:00 a second call, attached to the WhatsApp ticket by amal
    for n, kind, minute in ((4, "new", 0), (5, "answered", 1)):
        extra = {"caller": f"+{CALLER}", "agent": "amal"} if kind != "new" else {"caller": CALLER}
        await post(c, ev(n, kind, "c2", DAY.replace(hour=11, minute=minute), **extra))
    await post(c, ev(6, "hangup", "c2", DAY.replace(hour=11, minute=4), duration_s=180))
    r = await c["session"].post("/v1/cti/calls/riyadh-pbx:c2/disposition", headers=amal,
                                json={"action": "attach", "ticket": earlier.ticket_id})  # fmt: skip
    assert (await r.json())["call"]["ticket_id"] == earlier.ticket_id
    thread = service.store.get_tickets([earlier.ticket_id])[0].message_ids
    assert len(thread) == 2  # the call is now a message on the WhatsApp ticket

    # 12:00 missed in hours: logged only; 21:00 missed and 23:00 voicemail: callbacks
    await post(c, ev(7, "new", "c3", DAY.replace(hour=12), caller="+966112345678"))
    r = await post(c, ev(8, "hangup", "c3", DAY.replace(hour=12, second=30)))
    assert (await r.json())["state"] == "missed" and (await r.json())["ticket"] is None
    before = datetime.now(UTC)
    await post(c, ev(9, "new", "c4", DAY.replace(hour=21), caller="+966112345678"))
    r = await post(c, ev(10, "missed", "c4", DAY.replace(hour=21, second=40)))
    missed = await r.json()
    await post(c, ev(11, "new", "c5", DAY.replace(hour=23), caller=f"+{CALLER}"))
    vm = ev(12, "voicemail", "c5", DAY.replace(hour=23, minute=1), recording="vm/c5.wav")
    r = await post(c, vm)
    voicemail = await r.json()
    after = datetime.now(UTC)
    assert (await post(c, vm)).status == 200  # the PBX resends: a duplicate, nothing new
    assert missed["disposition"] == voicemail["disposition"] == "callback"
    callbacks = service.store.get_tickets([missed["ticket"], voicemail["ticket"]])
    assert {t.queue for t in callbacks} == {"callbacks"}
    assert {t.sla_policy for t in callbacks} == {"callback"}
    assert callbacks[1].customer_id == earlier.customer_id
    centre_hours = build_calendars(service.config().calendars)["centre"]
    for t in callbacks:
        (first, *_) = runtime.clocks.summary(t.id)
        assert first.target == "first_response" and first.state == "running"
        # the clock runs from when the ticket was taken in, in the centre's hours
        assert centre_hours.add_business_time(before, 7200) <= first.due_at
        assert first.due_at <= centre_hours.add_business_time(after, 7200)
    (message,) = service.store.ticket_messages(callbacks[1].id)
    assert message.attachments[0].ref == "vm/c5.wav"

    with c["records"].connection() as conn:
        figures = call_figures(conn, DAY.date(), DAY.date(), RIYADH)
    (riyadh,) = figures["branches"]
    assert (riyadh["branch"], riyadh["calls"], riyadh["answered"]) == ("riyadh", 5, 2)
    assert (riyadh["missed"], riyadh["voicemail"], riyadh["callbacks"]) == (2, 1, 2)
    assert riyadh["answer_rate"] == 0.4
    assert riyadh["awaiting_callback"] == 3  # c3, c4, c5: none got through since
    assert riyadh["average_handle_s"] == (300 + 180) / 2
    assert branches_of(service.config(), ("callbacks",)) == {"callbacks", "riyadh"}
    day = {"from": DAY.date().isoformat(), "to": DAY.date().isoformat()}
    boss = {"Authorization": f"Bearer {c['tokens']['boss']}"}
    r = await c["session"].get("/v1/reports/calls", params=day, headers=boss)
    assert r.status == 200 and (await r.json())["branches"] == figures["branches"]
    r = await c["session"].get("/v1/reports/calls", params=day, headers=amal)
    assert r.status == 403  # an agent is no supervisor
    r = await c["session"].get("/v1/reports/calls", params={"from": "soon"}, headers=boss)
    assert r.status == 400 and "from" in (await r.json())["error"]
    env = {"OMNIDESK_DATABASE_URL": c["pg_url"]}
    args = ("calls", "--from", day["from"], "--to", day["to"], "--config", str(AGENTS_CONFIG))
    ran = omnidesk(*args, "--json", env=env)
    assert ran.returncode == 0 and json.loads(ran.stdout)["branches"] == figures["branches"]
    table = omnidesk(*args, env=env).stdout.splitlines()
    assert table[-2].split() == ["riyadh", "5", "2", "2", "1", "2", "3", "40.0%", "240.0"]
    assert table[-1].split()[:3] == ["total", "5", "2"]
    assert not visible({"type": "call_answered", "agent": "amal"}, {"general"}, "omar")

    # the records writer takes the whole day in: tickets, messages, the screen-pop event
    await RecordWriter(runtime.store, c["pg_url"]).drain()
    with c["records"].connection() as conn:
        phone = conn.execute("SELECT count(*) FROM tickets WHERE channel = 'phone'").fetchone()
        popped = conn.execute(
            "SELECT data->>'call' FROM events WHERE type = 'call_answered'"
        ).fetchall()
    assert phone == (3,) and popped == [("riyadh-pbx:c1",), ("riyadh-pbx:c2",)]
    assert runtime.store.r.hlen(runtime.store.keys.records_failed()) == 0


async def test_a_forged_or_stale_signature_gets_401_and_nothing_is_kept(
    centre: dict[str, Any],
) -> None:
    c = centre
    event = ev(1, "new", "f1", DAY.replace(hour=9), caller="+966501234567")
    r = await post(c, event, secret="not-the-secret")
    assert r.status == 401 and "Signature" in (await r.json())["error"]
    r = await post(c, event, at=time.time() - 3600)  # a replay of an old, signed request
    assert r.status == 401 and "Timestamp" in (await r.json())["error"]
    body = json.dumps(event).encode()
    headers = signed(body) | {"X-Omnidesk-Pbx": "elsewhere"}
    assert (await c["session"].post("/v1/cti/events", data=body, headers=headers)).status == 401
    for stamp in ("\u00b2", "1e9", " 1", "9" * 13):  # not ASCII digits: refused, never a 500
        headers = signed(body) | {"X-Omnidesk-Timestamp": stamp}
        r = await c["session"].post("/v1/cti/events", data=body, headers=headers)
        assert r.status == 401 and "Timestamp" in (await r.json())["error"], stamp
    assert count(c["records"], "calls") == count(c["records"], "call_events") == 0
    r = await post(c, {**event, "type": "ringing"})  # signed but not an event we know
    assert r.status == 400 and "type" in (await r.json())["error"]
    assert count(c["records"], "calls") == 0
    r = await post(c, ev(2, "answered", "f2", DAY.replace(hour=9), agent="nobody"))
    assert r.status == 201 and (await r.json())["state"] == "answered"  # kept, nobody popped
    assert count(c["records"], "calls") == 1
