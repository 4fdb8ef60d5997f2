"""The dashboard opened with a directory login's session cookie instead of a bearer token
(real Redis; the agents plugin's real `authorize_session` hook): a directory supervisor's
session sees its queues' snapshot and stream, a directory agent without the role gets 403
`not_supervisor`, neither cookie nor token 401, an ended session 401 `session_ended`, a
revoked session ends an open stream at its next re-check, and a session's reassignment
needs its CSRF token. The directory agents are written into the directory roster as a login
writes them, and their sessions made by `Sessions.create` as a login makes them: the LDAP
side is tests/test_directory_login.py's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from omnidesk.agents.plugin import AgentsPlugin
from omnidesk.agents.routes import add_routes
from omnidesk.agents.service import AgentService
from omnidesk.config import AgentConfig, DirectoryConfig, DirectoryGroup
from omnidesk.plugins import Plugin, Plugins
from omnidesk.reports import dashboard as dashboard_module
from omnidesk.reports.calls import route_hook as call_report_routes
from omnidesk.reports.dashboard import Dashboard, route_hook
from omnidesk.runtime import Runtime
from omnidesk.viewers import (
    CsrfMissing,
    NotSupervisor,
    SessionEnded,
    SessionNotSupervisor,
    Viewer,
)
from tests.agentkit import Outbox, agents_config
from tests.storekit import web as web_form

# never asked: the sessions below are made as a login makes them, past the directory
DIRECTORY = DirectoryConfig(
    url="ldaps://127.0.0.1:1", bind_dn="cn=omnidesk,dc=example", bind_password_env="UNUSED_PW",
    user_base="ou=people,dc=example",
    groups=[DirectoryGroup(dn="cn=supervisors,dc=example", role="supervisor",
                           queues=["general", "complaints"])],
)  # fmt: skip
DINA = AgentConfig(id="dina", name="Dina", queues=["general", "complaints"], role="supervisor")
LAYLA = AgentConfig(id="layla", name="Layla", queues=["general"])


@pytest.fixture
async def desk(
    prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, Any]]:
    monkeypatch.delenv("OMNIDESK_DASHBOARD_TOKEN", raising=False)
    loaded = agents_config(prefix, tmp_path / "state")
    loaded = replace(loaded, data=loaded.data.model_copy(update={"directory": DIRECTORY}))
    runtime = Runtime.from_config(loaded)
    service = AgentService(
        store=runtime.store, config=lambda: loaded.data, send_reply=Outbox(),
        archive=runtime.archive,
    )  # fmt: skip
    service.directory.put([DINA, LAYLA], 900)  # as a directory login writes its agent
    agents = AgentsPlugin()
    agents.service = service
    plugins = Plugins([agents])
    dashboard = Dashboard(
        runtime.store, loaded.data, authorize=plugins.authorize,
        authorize_session=plugins.authorize_session, more_agents=plugins.more_agents,
    )  # fmt: skip
    app = web.Application()
    add_routes(service)(app)
    route_hook(dashboard)(app)
    call_report_routes(dashboard, None)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield {"client": client, "service": service, "runtime": runtime, "plugins": plugins}
    await client.close()


def signed_in(service: AgentService, agent: str) -> tuple[dict[str, str], str]:
    """A live login session of the agent: its Cookie header, and its CSRF token."""
    cookie, csrf = service.sessions.create(agent, DIRECTORY.session_ttl_s, DIRECTORY.session_max_s)
    return {"Cookie": f"omnidesk_session={cookie}"}, csrf


async def test_a_directory_supervisors_session_opens_the_dashboard(desk: dict[str, Any]) -> None:
    client, service = desk["client"], desk["service"]
    dina, _ = signed_in(service, "dina")
    r = await client.get("/v1/dashboard.json?lang=en", headers=dina)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["viewer"] == {"name": "dina", "can_reassign": True}
    assert [q["queue"] for q in body["queues"]] == ["general", "complaints"]
    # the directory's agents are listed beside the config's, each once
    listed = [row["agent"] for row in body["agents"]["list"]]
    assert {"dina", "layla"} <= set(listed) and len(listed) == len(set(listed))
    assert any(a.id in listed for a in service.config().agents)
    # the page's sign-in link is worded from the catalogues, in both languages
    assert body["labels"]["directory_sign_in"] == "Sign in with your directory account"
    ar = await (await client.get("/v1/dashboard.json?lang=ar", headers=dina)).json()
    assert ar["labels"]["directory_sign_in"] == "سجّل الدخول بحساب الدليل"

    layla, _ = signed_in(service, "layla")  # a directory agent, not a supervisor
    r = await client.get("/v1/dashboard.json?lang=en", headers=layla)
    refused = await r.json()
    assert r.status == 403 and refused["error"] == "not_supervisor"
    assert refused["message"].startswith("You are signed in as an agent without")

    r = await client.get("/v1/dashboard.json?lang=en")
    assert r.status == 401 and (await r.json())["error"] == "no_token"
    ended = {"Cookie": "omnidesk_session=ods_never-issued"}
    r = await client.get("/v1/dashboard.json?lang=ar", headers=ended)
    refused = await r.json()
    assert r.status == 401 and refused["error"] == "session_ended"
    assert refused["message"].startswith("انتهت جلسة دخولك")

    # the supervisors' report endpoints take the session the same way (this one then needs
    # PostgreSQL, which this test does not give it: 503, past the login)
    assert (await client.get("/v1/reports/calls", headers=dina)).status == 503
    assert (await client.get("/v1/reports/calls", headers=layla)).status == 403
    assert (await client.get("/v1/reports/calls")).status == 401


async def read_event(response: Any, kind: str) -> str:
    """The data of the next `kind` event on the stream (5 s at most)."""

    async def until() -> str:
        buffer = ""
        while True:
            chunk = await response.content.readany()
            assert chunk, f"the stream ended before a {kind!r} event: {buffer[-300:]!r}"
            buffer += chunk.decode()
            for block in buffer.split("\n\n")[:-1]:
                if block.startswith(f"event: {kind}\n"):
                    return block.split("data: ", 1)[1]

    return await asyncio.wait_for(until(), timeout=5)


async def test_a_revoked_session_ends_the_stream_at_its_next_check(
    desk: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard_module, "TICK_S", 0.3)  # re-checked every 0.3 s, not 10
    client, service = desk["client"], desk["service"]
    dina, _ = signed_in(service, "dina")
    response = await client.get("/v1/dashboard/stream?lang=en", headers=dina)
    assert response.status == 200
    assert '"name":"dina"' in await read_event(response, "snapshot")
    assert '"name":"dina"' in await read_event(response, "snapshot")  # re-checked: still on
    assert service.sessions.revoke("dina") == 1  # as losing access at the directory sync does
    refused = await read_event(response, "refused")
    assert '"error":"session_ended"' in refused
    assert await asyncio.wait_for(response.content.read(), timeout=5) == b""  # it ended
    response.close()


async def test_a_sessions_reassignment_needs_its_csrf_token(desk: dict[str, Any]) -> None:
    client, service, runtime = desk["client"], desk["service"], desk["runtime"]
    dina, csrf = signed_in(service, "dina")
    (opened,) = runtime.process([web_form("my order is late", email="c@example.sa")]).results
    ticket = str(opened.ticket_id)
    path = f"/v1/tickets/{ticket}/assign"
    r = await client.post(path, json={"agent": "amal"}, headers=dina)
    assert r.status == 403 and (await r.json())["code"] == "csrf_refused"
    assert service.store.get_ticket(ticket).assignee is None  # refused: nothing moved
    r = await client.post(path, json={"agent": "amal"}, headers={**dina, "X-CSRF-Token": csrf})
    assert r.status == 200, await r.text()
    assert service.store.get_ticket(ticket).assignee == "amal"
    # the dashboard's own check says the same of a state change without the token
    with pytest.raises(CsrfMissing):
        desk["plugins"].authorize_session(dina["Cookie"].split("=", 1)[1], "POST", None)
    viewer = desk["plugins"].authorize_session(dina["Cookie"].split("=", 1)[1], "POST", csrf)
    assert (viewer.name, viewer.can_reassign) == ("dina", True)


class Sessions(Plugin):
    name: ClassVar[str] = "sessions"

    def authorize_session(self, cookie: str, method: str, csrf: str | None) -> Viewer | None:
        if cookie == "ods_boss":
            return Viewer("boss", ("cr",), can_reassign=True)
        if cookie == "ods_agent":
            raise SessionNotSupervisor("not a supervisor")
        if cookie == "ods_bug":
            raise KeyError(cookie)
        return None


def test_authorize_session_asks_the_plugins_and_refuses_what_none_knows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    authorize_session = Plugins([Sessions()]).authorize_session
    assert authorize_session("ods_boss", "GET", None).name == "boss"
    with pytest.raises(NotSupervisor):  # a refusal is the answer, not a fault
        authorize_session("ods_agent", "GET", None)
    with pytest.raises(SessionEnded):  # a plugin's bug is logged, and the cookie refused
        authorize_session("ods_bug", "GET", None)
    assert "plugin sessions: authorize_session failed" in caplog.text
    with pytest.raises(SessionEnded):  # no plugin (no agents part): no session exists
        Plugins([]).authorize_session("ods_boss", "GET", None)
    with pytest.raises(SessionEnded):  # the default hook knows no session
        Plugins([Plugin()]).authorize_session("ods_boss", "GET", None)
