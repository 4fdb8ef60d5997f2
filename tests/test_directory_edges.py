"""Directory login edge cases against the real slapd (tests/ldapkit.py): a DN with an escaped
comma (AD's "CN=Smith\\, John,..."), a ticket reassigned between the sync's read and its
release, a Redis failure during a sync pass, and the unknown name's dummy bind."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
import redis
from pydantic import ValidationError
from redis.backoff import NoBackoff
from redis.retry import Retry

from omnidesk.agents.directory import Directory, DirectoryUser, LoginRefused, agent_of, dn_key
from omnidesk.agents.directory_sync import sync, sync_loop
from omnidesk.config import AgentConfig, DirectoryConfig
from tests.ldapkit import BASE, group_dn, slapd  # noqa: F401
from tests.services import free_port
from tests.storekit import web as web_form
from tests.test_directory_login import desk, directory_config, login  # noqa: F401

SMITH_DN = f"cn=Smith\\, John,ou=people,{BASE}"


def add_smith(server: Any) -> None:
    """A user whose CN holds a comma (escaped in the DN), in the general desk's group."""
    server.modify(
        f"dn: {SMITH_DN}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: jsmith\n"
        "cn: Smith, John\nsn: Smith\nmail: jsmith@moc.example.sa\nuserPassword: jsmith-pw\n"
    )
    server.modify(
        f"dn: {group_dn('desk-general')}\nchangetype: modify\nadd: member\nmember: {SMITH_DN}\n"
    )


@pytest.mark.parametrize("reserved", ["login", "directory"])
def test_the_login_and_directory_actor_names_cannot_be_agent_ids(reserved: str) -> None:
    """Events name them as actors (a login, a sync's release): an agent by that id would be
    credited with them, or lose their own work to "nobody" in the reports."""
    with pytest.raises(ValidationError, match="own actors"):
        AgentConfig(id=reserved, name="X", queues=["general"])
    config = DirectoryConfig(
        url="ldaps://dc.example", bind_dn="cn=svc", bind_password_env="PW", user_base="ou=p",
        groups=[{"dn": "cn=a", "queues": ["general"]}],
    )  # fmt: skip
    user = DirectoryUser(
        f"uid={reserved},ou=p", {"uid": [reserved], "cn": ["X"]}, tuple(config.groups)
    )
    assert agent_of(user, config) is None


def test_dn_key_reads_escapes_and_keeps_an_escaped_comma_in_its_value() -> None:
    """AD writes the comma as "\\,", slapd as "\\2C": one key, split at the real commas."""
    spelled = dn_key("CN=Smith\\, John, OU=People ,DC=x")
    assert spelled == dn_key("cn=smith\\2C john,ou=people,dc=x")
    assert spelled.endswith(",ou=people,dc=x") and spelled.count(",") == 3
    assert dn_key("UID=Hana, OU=People ,DC=x") == "uid=hana,ou=people,dc=x"


async def test_a_user_whose_dn_has_an_escaped_comma_logs_in_and_the_sync_keeps_them(
    desk: dict[str, Any],
) -> None:
    """slapd hands the member back as "cn=Smith\\2C John,...": the base search must use it
    as given (the key is for comparing only)."""
    client, service, server = desk["client"], desk["service"], desk["slapd"]
    add_smith(server)
    r, session = await login(client, "jsmith", "jsmith-pw")
    assert r.status == 200, await r.text()
    result = sync(service)
    assert "jsmith" in result.kept and result.revoked == []
    assert sync(service).revoked == []
    me = await client.get("/v1/me", headers={"Cookie": session["Cookie"]})
    assert me.status == 200 and (await me.json())["name"] == "Smith, John"


async def test_a_sync_pass_that_meets_a_redis_outage_leaves_the_loop_running(
    desk: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis goes (a client on a closed port) after the pass read what layla holds, so the
    ticket's own read meets it: one log line, and the loop waits for the next pass."""
    service, runtime = desk["service"], desk["runtime"]
    assert "layla" in sync(service).kept
    (result,) = runtime.process([web_form("a question", email="c@example.sa")]).results
    assert service.assigner.claim(service.agent("layla")).ticket_id == result.ticket_id
    working, read = service.store.r, service.assigner.held
    down = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0), decode_responses=True)

    def held_then_outage(agent_id: str) -> list[str]:
        seen = read(agent_id)
        if seen:
            service.store.r = down
        return seen

    monkeypatch.setattr(service.assigner, "held", held_then_outage)
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, "omnidesk.agents.directory")
    loop = asyncio.create_task(sync_loop(service, stop))
    deadline = time.monotonic() + 20
    while not loop.done() and "directory sync failed" not in caplog.text:
        assert time.monotonic() < deadline, "the sync pass never ended"
        await asyncio.sleep(0.05)
    assert not loop.done(), loop.exception()
    assert "directory sync failed: redis unavailable" in caplog.text
    service.store.r = working
    stop.set()
    await asyncio.wait_for(loop, timeout=10)
    assert service.assigner.held("layla") == [result.ticket_id]  # nothing dropped


def test_an_unknown_name_costs_a_bind_as_a_known_one_does(
    slapd: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No timing here (timed tests are banned): the unknown name's path must make the same
    bind, on a DN no entry has, that a known name's makes, and that bind must fail."""
    directory = Directory(directory_config(slapd))
    binds: list[tuple[str, bool]] = []
    real = Directory._binds

    def counted(self: Directory, dn: str, password: str) -> bool:
        bound = real(self, dn, password)
        binds.append((dn, bound))
        return bound

    monkeypatch.setattr(Directory, "_binds", counted)
    with pytest.raises(LoginRefused) as refused:
        directory.authenticate("nobody", "nobody-pw")
    assert refused.value.reason == "unknown_or_disabled"
    assert binds == [(directory.no_such_dn(), False)]
    with pytest.raises(LoginRefused) as refused:
        directory.authenticate("layla", "not-her-password")
    assert refused.value.reason == "wrong_password"
    assert len(binds) == 2 and binds[1][1] is False
