"""Directory login against a real OpenLDAP (tests/ldapkit.py: a private slapd, StartTLS with
its certificate checked): a login that works a ticket with the session cookie and its CSRF
token, a wrong password and the lockout, a disabled user, a group change and a removal
taking effect at the sync (tickets back to the queue, sessions ended), LDAP injection in the
name refused, and the `directory:` config's FILE:LINE checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import ldap3
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from ruamel.yaml import YAML

from omnidesk.agents.directory import DirectoryUnavailable, DirectoryUser, agent_of, dn_key
from omnidesk.agents.directory_sync import sync
from omnidesk.agents.routes import add_routes
from omnidesk.config import DirectoryConfig
from omnidesk.configload import parse_config
from omnidesk.errors import ConfigError
from omnidesk.runtime import Runtime
from tests.agentkit import AGENTS_CONFIG, Outbox, agents_config
from tests.clikit import omnidesk
from tests.ldapkit import (  # noqa: F401
    SERVICE_DN,
    SERVICE_PW,
    Slapd,
    slapd,
    stop_slapd,
    user_dn,
)
from tests.storekit import REDIS_URL
from tests.storekit import web as web_form


def directory_config(server: Slapd, **over: str) -> DirectoryConfig:
    section = YAML(typ="safe").load(server.directory_yaml(**over))["directory"]
    return DirectoryConfig(**section)


@pytest.fixture
async def desk(slapd: Slapd, prefix: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    from omnidesk.agents.service import AgentService

    loaded = agents_config(prefix, tmp_path / "state")
    directory = directory_config(slapd, lockout_attempts="3")
    loaded = replace(loaded, data=loaded.data.model_copy(update={"directory": directory}))
    runtime = Runtime.from_config(loaded)
    service = AgentService(
        store=runtime.store, config=lambda: loaded.data, send_reply=Outbox(),
        archive=runtime.archive,
    )  # fmt: skip
    app = web.Application()
    add_routes(service)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield {"client": client, "service": service, "runtime": runtime, "slapd": slapd}
    await client.close()


def events(service: Any, kind: str) -> list[dict[str, str]]:
    entries = service.store.r.xrange(service.store.keys.events())
    return [fields for _, fields in entries if fields.get("type") == kind]


async def login(client: TestClient, user: str, password: str) -> tuple[Any, dict[str, str]]:
    """POST /v1/login; on success the Cookie header to send (the Secure cookie is not sent
    back over the test's plain http by aiohttp's jar) and the CSRF header."""
    r = await client.post("/v1/login", json={"user": user, "password": password})
    if r.status != 200:
        return r, {}
    cookie = SimpleCookie(r.headers["Set-Cookie"])["omnidesk_session"]
    csrf = (await r.json())["csrf"]
    return r, {"Cookie": f"omnidesk_session={cookie.value}", "X-CSRF-Token": csrf}


def open_ticket(runtime: Runtime, text: str) -> str:
    (result,) = runtime.process([web_form(text, email="cust@example.sa")]).results
    return str(result.ticket_id)


async def test_a_directory_login_works_a_ticket_with_its_session_and_csrf(
    desk: dict[str, Any],
) -> None:
    client, service, runtime = desk["client"], desk["service"], desk["runtime"]
    r = await client.get("/v1/login")
    assert await r.json() == {"directory": True, "agent": None}
    r, session = await login(client, "layla", "layla-pw")
    assert r.status == 200, await r.text()
    set_cookie = r.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attribute in set_cookie
    assert session["X-CSRF-Token"] not in set_cookie  # the page has it from the answer only
    me = await (await client.get("/v1/me", headers={"Cookie": session["Cookie"]})).json()
    assert (me["id"], me["role"], me["queues"]) == ("layla", "agent", ["general"])
    assert (me["languages"], me["capacity"]) == (["ar", "en"], 2)  # from the attributes

    ticket = open_ticket(runtime, "please help with my account")
    r = await client.post("/v1/claims", json={}, headers={"Cookie": session["Cookie"]})
    assert r.status == 403 and (await r.json())["code"] == "csrf_refused"
    wrong = {**session, "X-CSRF-Token": "not-the-token"}
    assert (await client.post("/v1/claims", json={}, headers=wrong)).status == 403
    r = await client.post("/v1/claims", json={}, headers=session)
    assert r.status == 201 and (await r.json())["ticket"]["id"] == ticket
    r = await client.post(f"/v1/tickets/{ticket}/reply", json={"text": "on it"}, headers=session)
    assert r.status == 201
    r = await client.post(f"/v1/tickets/{ticket}/resolve", headers=session)
    assert (await r.json())["ticket"]["status"] == "resolved"
    again = await (await client.get("/v1/login", headers={"Cookie": session["Cookie"]})).json()
    assert (again["agent"], again["csrf"]) == ("layla", session["X-CSRF-Token"])
    (event,) = events(service, "login")
    assert (event["agent"], event["source"]) == ("layla", "directory")

    token = service.tokens.create("sara")  # config agents' tokens work beside it
    r = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (await r.json())["id"] == "sara"

    assert (await client.delete("/v1/login", headers={"Cookie": session["Cookie"]})).status == 403
    assert (await client.delete("/v1/login", headers=session)).status == 204
    assert (await client.get("/v1/me", headers={"Cookie": session["Cookie"]})).status == 401
    assert [e["agent"] for e in events(service, "logout")] == ["layla"]


async def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_name(
    desk: dict[str, Any],
) -> None:
    client, service = desk["client"], desk["service"]
    answers = []
    for user, password in (("layla", "wrong"), ("nobody", "x"), ("layla", "")):
        r, _ = await login(client, user, password)
        answers.append((r.status, await r.json()))
    assert {(s, a["code"], a["error"]) for s, a in answers} == {
        (401, "bad_login", "wrong user name or password")  # one answer, whatever the cause
    }
    reasons = [(e["user"], e["reason"]) for e in events(service, "login_failed")]
    assert reasons == [("layla", "wrong_password"), ("nobody", "unknown_or_disabled"),
                       ("layla", "empty_password")]  # fmt: skip
    r, _ = await login(client, "layla", "wrong")  # the third failure of layla in the window
    assert r.status == 401
    r, session = await login(client, "layla", "layla-pw")  # the right one, but locked out
    assert r.status == 429 and not session
    assert 0 < int(r.headers["Retry-After"]) <= 900
    assert (await r.json())["code"] == "login_locked"
    assert [e["user"] for e in events(service, "login_locked")] == ["layla", "layla"]
    assert events(service, "login") == []
    r, _ = await login(client, "khalid", "khalid-pw")  # another name is not locked
    assert r.status == 200
    assert "layla-pw" not in str(service.store.r.xrange(service.store.keys.events()))


async def test_a_disabled_user_and_one_in_no_group_cannot_log_in(desk: dict[str, Any]) -> None:
    client, service, server = desk["client"], desk["service"], desk["slapd"]
    # dana: employeeType disabled; zaid: in no mapped group; sara: a config agent's id
    for user in ("dana", "zaid", "sara"):
        r, _ = await login(client, user, f"{user}-pw")
        assert r.status == 401
    reasons = [(e["user"], e["reason"]) for e in events(service, "login_failed")]
    assert reasons == [("dana", "unknown_or_disabled"), ("zaid", "no_group"),
                       ("sara", "id_of_a_config_agent")]  # fmt: skip
    result = sync(service)
    assert result.kept == ["khalid", "layla", "noura"]  # dana is in desk-general, but disabled
    assert service.agent("noura").role == "supervisor"
    assert service.agent("sara").name == "Sara"  # still the config's
    # removed from the directory (the group still names the DN: no referential integrity)
    server.modify(f"dn: {user_dn('khalid')}\nchangetype: delete\n")
    assert sync(service).revoked == ["khalid"]
    assert [e["agent"] for e in events(service, "access_revoked")] == ["khalid"]


async def test_a_group_change_and_a_removal_take_effect_at_the_sync(desk: dict[str, Any]) -> None:
    client, service, runtime, server = (desk[k] for k in ("client", "service", "runtime", "slapd"))
    r, session = await login(client, "layla", "layla-pw")
    assert r.status == 200
    first = open_ticket(runtime, "first question")
    second = open_ticket(runtime, "second question")
    for _ in (first, second):
        assert (await client.post("/v1/claims", json={}, headers=session)).status == 201
    assert sorted(service.assigner.held("layla")) == sorted([first, second])

    # moved from the general desk to complaints: her general tickets go back to the queue
    server.set_members("desk-general", ["dana"])
    server.set_members("desk-complaints", ["khalid", "sara", "layla"])
    result = sync(service)
    assert "layla" in result.kept and result.revoked == [] and result.released == 2
    me = await (await client.get("/v1/me", headers={"Cookie": session["Cookie"]})).json()
    assert me["queues"] == ["complaints"]
    assert service.assigner.held("layla") == []
    waiting = service.store.r.zrange(service.store.keys.queue_waiting("general"), 0, -1)
    assert sorted(waiting) == sorted([first, second])
    assert {e["ticket"] for e in events(service, "released")} == {first, second}

    # disabled in the directory: gone at the next sync, and at her next request
    service.assigner.set_presence("layla", "online")
    token = service.tokens.create("layla")  # an operator made her one: it ends with her access
    third = open_ticket(runtime, "a complaint about the service")  # complaints: pushed to her
    server.modify(f"dn: {user_dn('layla')}\nchangetype: modify\nadd: employeeType\n"
                  "employeeType: disabled\n")  # fmt: skip
    service.assigner.push_all()
    assert third in service.assigner.held("layla")
    result = sync(service)
    assert result.revoked == ["layla"]
    assert (await client.get("/v1/me", headers={"Cookie": session["Cookie"]})).status == 401
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).status == 401
    assert [e["actor"] for e in events(service, "token_revoked")] == ["directory"]
    assert service.assigner.held("layla") == [] and service.assigner.presence("layla") == "offline"
    assert third in service.store.r.zrange(service.store.keys.queue_waiting("complaints"), 0, -1)
    (revoked,) = events(service, "access_revoked")
    assert (revoked["agent"], revoked["sessions"]) == ("layla", "1")
    r, _ = await login(client, "layla", "layla-pw")
    assert r.status == 401


async def test_ldap_injection_in_the_name_is_refused(desk: dict[str, Any]) -> None:
    client, service, server = desk["client"], desk["service"], desk["slapd"]
    # unescaped, "lay*" would find layla, and her password would then bind: the test can fail
    tls = ldap3.Tls(ca_certs_file=str(server.ca_file))
    conn = ldap3.Connection(ldap3.Server(server.url, tls=tls), SERVICE_DN, SERVICE_PW)
    conn.open()
    conn.start_tls()
    conn.bind()
    conn.search("ou=people,dc=omnidesk,dc=test", "(uid=lay*)", attributes=["uid"])
    assert [str(e.uid) for e in conn.entries] == ["layla"]
    conn.unbind()
    for name in ("lay*", "*", "*)(uid=*", "layla)(|(uid=*", "layla\x00", "x)(objectClass=*"):
        r, session = await login(client, name, "layla-pw")
        assert r.status == 401 and not session, name
    assert events(service, "login") == []
    reasons = [e["reason"] for e in events(service, "login_failed")]
    assert reasons == ["unknown_or_disabled"] * 4 + ["bad_name", "unknown_or_disabled"]


CONFIG_BASE = AGENTS_CONFIG.read_text("utf-8")


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("  url: ldap://dc.example:389\n", "directory: an ldap:// url needs start_tls: true"),
        ("  url: ldaps://dc.example\n  bind_password: hunter2\n", "bind_password: "),
        ("  url: ldaps://dc.example\n  groups: [{dn: cn=x, queues: [nowhere]}]\n",
         "directory.groups[0].queues[0]: queue 'nowhere' does not exist"),
    ],
)  # fmt: skip
def test_the_directory_section_is_checked_with_file_and_line(section: str, expected: str) -> None:
    body = (
        "directory:\n  bind_dn: cn=svc\n  bind_password_env: LDAP_PW\n  user_base: ou=people\n"
        + section
    )
    if "groups" not in section:
        body += "  groups: [{dn: cn=desk, queues: [general]}]\n"
    with pytest.raises(ConfigError) as err:
        parse_config(CONFIG_BASE + body, Path("cfg.yaml"))
    problems = [p for p in err.value.problems if expected in p]
    assert problems, err.value.problems
    assert problems[0].startswith("cfg.yaml:") and problems[0].split(":")[1].isdigit()


async def test_an_operator_lists_directory_agents_and_revokes_a_session(
    desk: dict[str, Any], prefix: str, tmp_path: Path
) -> None:
    client, service, server = desk["client"], desk["service"], desk["slapd"]
    config = tmp_path / "queue_config.yaml"
    head = f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n  state_dir: {tmp_path}\n"
    config.write_text(head + CONFIG_BASE + server.directory_yaml(), "utf-8")
    r, session = await login(client, "layla", "layla-pw")
    assert r.status == 200
    listed = omnidesk("agents", "list", "--config", str(config))
    assert listed.returncode == 0 and "layla" in listed.stdout and "amal" in listed.stdout
    ran = omnidesk("agents", "revoke", "layla", "--config", str(config))
    assert ran.stdout.strip() == "revoked 0 token(s) and 1 login session(s) of layla"
    assert (await client.get("/v1/me", headers={"Cookie": session["Cookie"]})).status == 401
    (revoked,) = events(service, "access_revoked")
    assert (revoked["actor"], revoked["agent"]) == ("operator", "layla")


async def test_an_unreachable_directory_refuses_logins_and_drops_nobody(
    desk: dict[str, Any],
) -> None:
    client, service, server = desk["client"], desk["service"], desk["slapd"]
    r, session = await login(client, "layla", "layla-pw")
    assert r.status == 200 and sync(service).kept == ["khalid", "layla", "noura"]
    stop_slapd(server)
    r, _ = await login(client, "khalid", "khalid-pw")
    assert r.status == 503 and r.headers["Retry-After"] == "5"
    assert events(service, "login_failed") == []  # not the person's failure: no lockout count
    with pytest.raises(DirectoryUnavailable):
        sync(service)
    me = await client.get("/v1/me", headers={"Cookie": session["Cookie"]})
    assert me.status == 200  # nobody dropped while the directory cannot say
    # an entry past its `until` (three sync intervals unseen) no longer counts: fail closed
    service.directory.put([service.agent("layla")], valid_s=-1)
    me = await client.get("/v1/me", headers={"Cookie": session["Cookie"]})
    assert me.status == 401


def test_an_entry_becomes_an_agent_with_the_configs_defaults_where_attributes_lack() -> None:
    config = DirectoryConfig(
        url="ldaps://dc.example", bind_dn="cn=svc", bind_password_env="PW", user_base="ou=p",
        groups=[{"dn": "cn=a", "queues": ["general"]}, {"dn": "cn=b", "role": "supervisor",
                "queues": ["cr", "general"]}], languages_attribute="lang",
        capacity_attribute="cap", capacity=7, languages=["ar"],
    )  # fmt: skip
    attrs = {"uid": ["Hana"], "cn": ["Hana"], "lang": ["fr"], "cap": ["lots"]}
    agent = agent_of(DirectoryUser("uid=hana,ou=p", attrs, tuple(config.groups)), config)
    assert agent is not None
    assert (agent.id, agent.role, agent.queues) == ("hana", "supervisor", ["general", "cr"])
    assert (agent.languages, agent.capacity, agent.email) == (["ar"], 7, None)
    odd = {"uid": ["not an id!"], "cn": ["x"]}
    assert agent_of(DirectoryUser("uid=x,ou=p", odd, tuple(config.groups)), config) is None
    assert dn_key("UID=Hana, OU=People ,DC=x") == "uid=hana,ou=people,dc=x"


async def test_a_directory_supervisor_hands_a_ticket_to_a_directory_agent(
    desk: dict[str, Any],
) -> None:
    client, service, runtime = desk["client"], desk["service"], desk["runtime"]
    assert sync(service).kept == ["khalid", "layla", "noura"]  # synced, never logged in
    r, session = await login(client, "noura", "noura-pw")
    me = await (await client.get("/v1/me", headers={"Cookie": session["Cookie"]})).json()
    # general from her group; complaints names her mail (boss@...) among its supervisors
    assert (me["role"], me["queues"]) == ("supervisor", ["general", "complaints"])
    ticket = open_ticket(runtime, "a question for the general desk")
    url = f"/v1/tickets/{ticket}/assign"
    r = await client.post(url, json={"agent": "layla"}, headers=session)
    assert r.status == 200, await r.text()
    assert service.assigner.held("layla") == [ticket]
    r = await client.post(url, json={"agent": "khalid"}, headers=session)
    assert r.status == 400  # khalid works complaints, not the ticket's general
    assert (await r.json())["code"] == "not_their_queue"
