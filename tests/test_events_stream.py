"""GET /v1/events/stream over a real HTTP server and client on the real Redis: a second
agent's transfer made through the API reaches the first agent's stream within 2 s, an event
in a queue that is not the agent's never does, Last-Event-ID resumes without loss (from the
stream, and from PostgreSQL once the records writer has trimmed it), and the session cookie
stands in for the token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from omnidesk.agents.http import HUB_KEY
from omnidesk.agents.routes import add_routes
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from tests.agentkit import make
from tests.storekit import web as web_form


class Stream:
    """An SSE client: frames as (id, event, data) read off a live response."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 2.0) -> tuple[str, str, dict[str, Any]]:
        fields: dict[str, str] = {}
        data: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.response.content.readline()).decode()
                if not line:
                    raise EOFError("the stream ended")
                line = line.rstrip("\n")
                if line == "":
                    if data:
                        return (
                            fields.get("id", ""),
                            fields.get("event", ""),
                            json.loads("\n".join(data)),
                        )
                    fields = {}
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                if name == "data":
                    data.append(value)
                else:
                    fields[name] = value

    async def until(
        self, pred: Any, timeout: float = 2.0
    ) -> tuple[list[tuple[str, str, dict[str, Any]]], tuple[str, str, dict[str, Any]]]:
        """Frames read until one matches `pred` (that one last), within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            got = await self.next(max(0.01, deadline - time.monotonic()))
            seen.append(got)
            if pred(got):
                return seen, got


@pytest.fixture
async def live(prefix: str, tmp_path: Path, pg_url: str) -> AsyncIterator[dict[str, Any]]:
    records = Records(pg_url)
    runtime, service, _ = make(prefix, tmp_path, records=records)
    app = web.Application()
    add_routes(service)(app)
    server = TestServer(app)
    await server.start_server()
    # unsafe: keep cookies of an IP host (127.0.0.1), as a browser does
    jar = aiohttp.CookieJar(unsafe=True)
    session = aiohttp.ClientSession(base_url=str(server.make_url("/")), cookie_jar=jar)
    tokens = {a: service.tokens.create(a) for a in ("amal", "omar", "sara")}
    yield {"server": server, "session": session, "service": service, "runtime": runtime,
           "tokens": tokens, "records": records, "pg_url": pg_url}  # fmt: skip
    await session.close()
    await server.close()
    records.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def subscribe(session: aiohttp.ClientSession, headers: dict[str, str], **kw: Any) -> Stream:
    r = await session.get("/v1/events/stream", headers=headers, **kw)
    assert r.status == 200, await r.text()
    assert r.headers["Content-Type"].startswith("text/event-stream")
    return Stream(r)


async def test_a_colleagues_transfer_shows_within_2s_and_other_queues_never(
    live: dict[str, Any],
) -> None:
    session, runtime, tokens = live["session"], live["runtime"], live["tokens"]
    general = runtime.process([web_form("سؤال عام", email="a@example.sa")]).results[0].ticket_id
    complaint = runtime.process([web_form("complaint about a shop", email="b@example.sa")])
    complaint_id = complaint.results[0].ticket_id
    stream = await subscribe(session, auth(tokens["amal"]))

    # omar (complaints) acts on his ticket: nothing of it may reach amal (general only)
    r = await session.post(f"/v1/tickets/{complaint_id}/notes", json={"text": "سري"},
                           headers=auth(tokens["omar"]))  # fmt: skip
    assert r.status == 201
    # a new customer message in amal's queue: the inbound shows
    runtime.process([web_form("سؤال آخر", email="c@example.sa")])
    seen, opened = await stream.until(lambda f: f[1] == "ticket_opened")
    assert opened[2]["queue"] == "general"

    # a colleague claims the next ticket of the queue: amal sees who took it
    await session.put("/v1/me/presence", json={"status": "online"}, headers=auth(tokens["sara"]))
    r = await session.post("/v1/claims", json={"queue": "general"}, headers=auth(tokens["sara"]))
    assert r.status == 201
    claimed_id = (await r.json())["ticket"]["id"]
    seen_claim, claimed = await stream.until(lambda f: f[1] == "assigned")
    assert claimed[2]["ticket"] == claimed_id and claimed[2]["agent"] == "sara"
    seen += seen_claim

    started = time.monotonic()
    r = await session.post(
        f"/v1/tickets/{general}/transfer",
        json={"queue": "quiet", "reason": "ليست من اختصاصنا"},
        headers=auth(tokens["sara"]),
    )
    assert r.status == 200
    more, moved = await stream.until(lambda f: f[1] == "transferred", timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert moved[2]["ticket"] == general and moved[2]["from"] == "general"
    assert moved[2]["actor"] == "sara" and moved[2]["reason"] == "ليست من اختصاصنا"
    assert moved[0] == moved[2]["id"] and "-" in moved[0]  # the SSE id is the stream id
    for _, _, data in seen + more:
        assert data["ticket"] != complaint_id and data["queue"] != "complaints", data
    stream.response.close()


async def test_last_event_id_resumes_without_loss(live: dict[str, Any]) -> None:
    session, runtime, tokens, service = (
        live["session"], live["runtime"], live["tokens"], live["service"]
    )  # fmt: skip
    h = auth(tokens["amal"])
    tid = runtime.process([web_form("استفسار", email="d@example.sa")]).results[0].ticket_id
    stream = await subscribe(session, h)
    await session.post(f"/v1/tickets/{tid}/notes", json={"text": "one"}, headers=h)
    _, first = await stream.until(lambda f: f[1] == "noted")
    stream.response.close()  # the browser goes away ...

    missed = []
    for text in ("two", "three"):
        r = await session.post(f"/v1/tickets/{tid}/notes", json={"text": text}, headers=h)
        missed.append((await r.json())["message"]["id"])
    await session.post(f"/v1/tickets/{tid}/pending", headers=h)

    # ... and comes back with the last id it saw: what it missed, in order, nothing lost
    stream = await subscribe(session, {**h, "Last-Event-ID": first[0]})
    seen, _ = await stream.until(lambda f: f[1] == "status_changed")
    assert [d["message"] for _, e, d in seen if e == "noted"] == missed
    ids = [i for i, _, _ in seen]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert first[0] not in ids
    stream.response.close()

    # the records writer trims the stream once PostgreSQL holds it: the replay reads there
    await RecordWriter(runtime.store, live["pg_url"]).drain()
    assert runtime.store.r.xlen(runtime.store.key("events")) == 0
    await session.post(f"/v1/tickets/{tid}/notes", json={"text": "four"}, headers=h)
    stream = await subscribe(session, {**h, "Last-Event-ID": first[0]})
    seen, _ = await stream.until(lambda f: f[1] == "noted" and f[0] not in ids)
    assert [d["message"] for _, e, d in seen if e == "noted"][:2] == missed
    assert [i for i, _, _ in seen][: len(ids)] == ids
    stream.response.close()
    assert service.records is live["records"]


async def test_cookie_auth_a_bad_token_and_a_bad_last_event_id(live: dict[str, Any]) -> None:
    session, runtime, tokens = live["session"], live["runtime"], live["tokens"]
    r = await session.get("/v1/events/stream", headers=auth("odt_nope"))
    assert r.status == 401
    r = await session.get("/v1/events/stream")
    assert r.status == 401
    bad_id = {**auth(tokens["amal"]), "Last-Event-ID": "1-x; DROP TABLE events"}
    r = await session.get("/v1/events/stream", headers=bad_id)
    assert r.status == 400
    r = await session.post("/v1/session", headers=auth(tokens["amal"]))
    assert r.status == 201  # the cookie jar keeps it, as a browser does for EventSource
    stream = await subscribe(session, {})
    tid = runtime.process([web_form("سؤال", email="e@example.sa")]).results[0].ticket_id
    _, opened = await stream.until(lambda f: f[1] == "ticket_opened")
    assert opened[2]["ticket"] == tid
    stream.response.close()


async def test_one_reader_for_many_subscribers(live: dict[str, Any]) -> None:
    session, runtime, tokens, server = (
        live["session"], live["runtime"], live["tokens"], live["server"]
    )  # fmt: skip
    streams = [await subscribe(session, auth(tokens["amal"])) for _ in range(5)]
    hub = server.app[HUB_KEY]
    assert len(hub.subscribers) == 5
    tid = runtime.process([web_form("سؤال جماعي", email="f@example.sa")]).results[0].ticket_id
    for stream in streams:
        _, opened = await stream.until(lambda f: f[1] == "ticket_opened")
        assert opened[2]["ticket"] == tid
        stream.response.close()


async def test_delivery_failure_and_sla_steps_show_heartbeats_and_revocation(
    live: dict[str, Any],
) -> None:
    session, runtime, tokens, service, server = (
        live["session"], live["runtime"], live["tokens"], live["service"], live["server"]
    )  # fmt: skip
    server.app[HUB_KEY].heartbeat_s = 0.3
    h = auth(tokens["amal"])
    tid = runtime.process([web_form("سؤال", email="g@example.sa")]).results[0].ticket_id
    stream = await subscribe(session, h)
    r = await session.post(f"/v1/tickets/{tid}/reply", json={"text": "أهلا"}, headers=h)
    mid = (await r.json())["message"]["id"]
    runtime.store.set_delivery(mid, "failed: 403 the customer blocked the bot")
    _, failed = await stream.until(lambda f: f[1] == "delivery")
    assert failed[2]["delivery"] == "failed: 403 the customer blocked the bot"
    assert failed[2]["message"] == mid
    # the SLA engine's steps are stream events like any other (omnidesk/lua/sla_commit.lua)
    runtime.store.add_event("sla_warned", tid, queue="general", actor="sla", at="0.75")
    _, warned = await stream.until(lambda f: f[1] == "sla_warned")
    assert warned[2]["ticket"] == tid and warned[2]["at"] == "0.75"

    # nothing happens: comments keep the connection alive
    async with asyncio.timeout(2):
        while (await stream.response.content.readline()) != b": ping\n":
            pass
    service.tokens.revoke("amal")  # the next check ends the stream
    await stream.until(lambda f: f[1] == "logout")
    assert await stream.response.content.read() == b""  # closed by the server


async def _feed(runtime: Any, tid: str, queue: str, every_s: float, fed: list[int]) -> None:
    """An event in `queue` every `every_s` seconds, until cancelled: a busy stream. `fed`
    counts them."""
    while True:
        n = len(fed) + 1
        await asyncio.to_thread(
            runtime.store.add_event, "sla_warned", tid, queue=queue, actor="sla", at=f"feed{n}"
        )
        fed.append(n)
        await asyncio.sleep(every_s)


async def test_a_revoked_token_ends_a_busy_stream_within_a_second(live: dict[str, Any]) -> None:
    """Events every 0.25 s, heartbeat 0.5 s: the stream never idles a whole heartbeat, and
    the token is still checked by the clock, so a revocation ends it within about 1 s."""
    session, runtime, tokens, service, server = (
        live["session"], live["runtime"], live["tokens"], live["service"], live["server"]
    )  # fmt: skip
    server.app[HUB_KEY].heartbeat_s = 0.5
    tid = runtime.process([web_form("سؤال", email="h@example.sa")]).results[0].ticket_id
    stream = await subscribe(session, auth(tokens["amal"]))
    feeder = asyncio.create_task(_feed(runtime, tid, "general", 0.25, []))
    try:
        for _ in range(3):  # events are flowing
            await stream.until(lambda f: f[1] == "sla_warned")
        await asyncio.to_thread(service.tokens.revoke, "amal")
        started = time.monotonic()
        seen, _ = await stream.until(lambda f: f[1] == "logout", timeout=2.0)
        assert time.monotonic() - started < 1.2
        assert any(f[1] == "sla_warned" for f in seen)  # busy until the logout
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    assert await stream.response.content.read() == b""  # closed by the server


async def test_a_queue_removed_by_a_reload_stops_showing_its_events(
    live: dict[str, Any],
) -> None:
    """The stream reads the agent from the config as it is now: once a reload moves amal
    from general to quiet, general's events stop and quiet's show, on the open stream."""
    session, runtime, tokens, service, server = (
        live["session"], live["runtime"], live["tokens"], live["service"], live["server"]
    )  # fmt: skip
    server.app[HUB_KEY].heartbeat_s = 0.5
    tid = runtime.process([web_form("سؤال", email="i@example.sa")]).results[0].ticket_id
    stream = await subscribe(session, auth(tokens["amal"]))
    fed: list[int] = []
    feeder = asyncio.create_task(_feed(runtime, tid, "general", 0.25, fed))
    try:
        await stream.until(lambda f: f[1] == "sla_warned" and f[2]["queue"] == "general")
        data = service.config()
        agents = [
            a.model_copy(update={"queues": ["quiet"]}) if a.id == "amal" else a for a in data.agents
        ]
        reloaded = data.model_copy(update={"agents": agents})
        service.config = lambda: reloaded  # what a SIGHUP does to the daemon's config
        after = len(fed)
        deadline = time.monotonic() + 3
        while len(fed) < after + 3:  # general events keep coming after the reload
            assert time.monotonic() < deadline, "the feeder stopped"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(
            runtime.store.add_event, "sla_warned", tid, queue="quiet", actor="sla", at="quiet"
        )
        seen, _ = await stream.until(lambda f: f[2].get("at") == "quiet", timeout=2.0)
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    # at most the general events already on their way before the reload; then none
    shown = [f for f in seen if f[2].get("queue") == "general"]
    assert len(shown) <= 1, shown
    stream.response.close()


async def test_messages_the_system_sends_show_live(live: dict[str, Any]) -> None:
    """A receipt (`acknowledged`) and a status answer (`status_replied`) are messages on the
    ticket: the console shows them as they are sent, not at the next reload."""
    from omnidesk.outbound import send_automatic
    from omnidesk.receipts import EVENT as RECEIPT
    from omnidesk.status_replies import EVENT as STATUS_REPLY

    session, runtime, tokens = live["session"], live["runtime"], live["tokens"]
    tid = runtime.process([web_form("سؤال", email="h@example.sa")]).results[0].ticket_id
    ticket = runtime.store.get_ticket(tid)
    stream = await subscribe(session, auth(tokens["amal"]))
    for event in (RECEIPT, STATUS_REPLY):
        message = send_automatic(runtime.store, lambda outs: None, ticket, "تم", event=event)
        _, shown = await stream.until(lambda f, e=event: f[1] == e)
        assert shown[2]["ticket"] == tid and shown[2]["message"] == message.id
    stream.response.close()


async def test_a_ticket_released_by_the_directory_sync_shows_live(live: dict[str, Any]) -> None:
    """The console drops a `released` ticket from its agent's list: the stream must send it."""
    from omnidesk.agents.directory_sync import release_outside

    session, runtime, service, tokens = (
        live[k] for k in ("session", "runtime", "service", "tokens")
    )
    tid = (
        runtime.process([web_form("a general question", email="r@example.sa")]).results[0].ticket_id
    )
    assert service.assigner.claim(service.agent("amal")).ticket_id == tid
    stream = await subscribe(session, auth(tokens["sara"]))  # sara works general too
    assert await asyncio.to_thread(release_outside, service, "amal", set()) == 1
    _, shown = await stream.until(lambda f: f[1] == "released")
    assert (shown[2]["ticket"], shown[2]["agent"], shown[2]["queue"]) == (tid, "amal", "general")
    stream.response.close()


async def test_the_stream_outlives_a_redis_failure_of_the_directory_roster(
    live: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With directory login the roster reads Redis; the stream re-reads the agent's queues off
    the loop, and when that read fails it keeps the queues it had (one log line) instead of
    ending."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from omnidesk.agents import stream_queues
    from omnidesk.agents.directory_roster import DirectoryRoster
    from omnidesk.config import DirectoryConfig
    from omnidesk.store import Store
    from tests.services import free_port

    session, runtime, service, tokens = (
        live[k] for k in ("session", "runtime", "service", "tokens")
    )
    directory = DirectoryConfig(
        url="ldaps://dc.example", bind_dn="cn=svc", bind_password_env="PW", user_base="ou=p",
        groups=[{"dn": "cn=a", "queues": ["general"]}],
    )  # fmt: skip
    data = service.config().model_copy(update={"directory": directory})
    monkeypatch.setattr(service, "config", lambda: data)
    monkeypatch.setattr(stream_queues, "REFRESH_S", 0.0)  # re-read at every event
    stream = await subscribe(session, auth(tokens["amal"]))
    working = service.directory
    down = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0), decode_responses=True)
    service.directory = DirectoryRoster(Store(down, service.store.prefix))
    caplog.set_level(logging.WARNING, "omnidesk.agents.http")
    first = runtime.process([web_form("during the outage", email="o@example.sa")]).results[0]
    _, shown = await stream.until(lambda f: f[1] == "ticket_opened")
    assert shown[2]["ticket"] == first.ticket_id
    assert "queues not re-read, kept (StoreUnavailable)" in caplog.text
    service.directory = working
    second = runtime.process([web_form("after the outage", email="o@example.sa")]).results[0]
    _, shown = await stream.until(lambda f: f[1] == "ticket_opened")
    assert shown[2]["ticket"] == second.ticket_id
    stream.response.close()
