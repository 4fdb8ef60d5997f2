"""Who a call reaches and what its screen-pop shows: an agent the directory gave (held in
Redis, not in the config) gets the pop of a call answered on their extension; the pop lists
only tickets of queues the agent may see, attaching to a ticket outside them is refused as
not found, and a supervisor sees only calls in their queues' scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from omnidesk.agents.directory import Directory, DirectoryUser, agent_of
from omnidesk.config import AgentConfig, DirectoryConfig, DirectoryGroup
from omnidesk.model import Channel, RawPayload
from tests.test_agents_api import whatsapp_body
from tests.test_cti import DAY, centre, ev, post  # noqa: F401 (centre: the fixture)
from tests.test_events_stream import subscribe

DIRECTORY = DirectoryConfig(
    url="ldaps://ldap.invalid", bind_dn="cn=omnidesk,dc=test", bind_password_env="OD_NO_SUCH",
    user_base="ou=people,dc=test", extension_attribute="telephoneNumber",
    groups=[DirectoryGroup(dn="cn=agents,dc=test", queues=["general"])],
)  # fmt: skip


@pytest.fixture
def desk(centre: dict[str, Any]) -> dict[str, Any]:
    """The centre with directory login on and a supervisor of `cr` only (`chief`)."""
    service = centre["service"]
    data = service.config()
    chief = AgentConfig(id="chief", name="Chief", queues=["cr"], role="supervisor")
    changed = data.model_copy(update={"directory": DIRECTORY, "agents": [*data.agents, chief]})
    service.config = lambda: changed
    return centre


def auth(c: dict[str, Any], agent: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {c['service'].tokens.create(agent)}"}


async def test_a_call_answered_on_a_directory_agents_extension_pops_on_their_stream(
    desk: dict[str, Any],
) -> None:
    c, service = desk, desk["service"]
    dina = AgentConfig(id="dina", name="Dina", queues=["general"], extension="2005")
    service.directory.put([dina], 60)  # as a directory login or sync stores her
    mine = auth(c, "dina")
    stream = await subscribe(c["session"], mine)
    await post(c, ev(1, "new", "d1", DAY.replace(hour=9), caller="0501234567"))
    r = await post(c, ev(2, "answered", "d1", DAY.replace(hour=9, second=5), extension="2005"))
    assert r.status == 201, await r.text()
    _, pop = await stream.until(lambda f: f[1] == "call_answered", timeout=5)
    assert pop[2]["agent"] == "dina" and pop[2]["call"] == "riyadh-pbx:d1"
    r = await c["session"].get("/v1/cti/calls/riyadh-pbx:d1", headers=mine)
    assert r.status == 200 and (await r.json())["call"]["agent"] == "dina"
    # named by id, she is found too
    await post(c, ev(3, "answered", "d2", DAY.replace(hour=10), agent="dina"))
    with c["records"].connection() as conn:
        row = conn.execute("SELECT agent, extension FROM calls WHERE call_id = 'd2'").fetchone()
    assert row == ("dina", "2005")


def test_the_directory_gives_the_extension_it_holds_and_drops_one_no_pbx_can_name() -> None:
    def agent(phone: str) -> AgentConfig | None:
        attributes = {"uid": ["Dina"], "cn": ["Dina"], "telephonenumber": [phone]}
        user = DirectoryUser("uid=dina,ou=people,dc=test", attributes, (DIRECTORY.groups[0],))
        return agent_of(user, DIRECTORY)

    assert "telephoneNumber" in Directory(DIRECTORY)._attributes()
    given = agent("2005")
    assert given is not None and (given.id, given.extension) == ("dina", "2005")
    written = agent("+966 (11) 2005")  # a number as people write it: its digits dialled
    assert written is not None and written.extension == "+966112005"
    unnamed = agent("2005/2006")  # not one a PBX can name: she is still an agent, without one
    assert unnamed is not None and unnamed.id == "dina" and unnamed.extension is None


async def test_the_pop_and_attach_keep_to_the_agents_queues(desk: dict[str, Any]) -> None:
    c, runtime = desk, desk["runtime"]
    question = {"id": "wamid.7", "type": "text", "text": {"body": "سؤال عن السجل التجاري"}}
    raw = RawPayload(channel=Channel.WHATSAPP, account="wa", received_at=datetime.now(UTC),
                     payload=whatsapp_body(question))  # fmt: skip
    (elsewhere,) = runtime.process([raw]).results
    assert c["service"].store.get_tickets([elsewhere.ticket_id])[0].queue == "cr"  # not amal's
    await post(c, ev(1, "new", "s1", DAY.replace(hour=9), caller="0501234567"))
    await post(c, ev(2, "answered", "s1", DAY.replace(hour=9, second=5), extension="2001"))
    amal = auth(c, "amal")
    shown = await (await c["session"].get("/v1/cti/calls/riyadh-pbx:s1", headers=amal)).json()
    assert shown["customer"]["id"] == elsewhere.customer_id
    assert shown["open_tickets"] == [] and shown["recent"] == []
    attach = {"action": "attach", "ticket": elsewhere.ticket_id}
    r = await c["session"].post(
        "/v1/cti/calls/riyadh-pbx:s1/disposition", headers=amal, json=attach
    )
    assert r.status == 404 and (await r.json())["code"] == "not_found"
    with c["records"].connection() as conn:
        assert conn.execute("SELECT disposition FROM calls").fetchone() == (None,)
    # boss supervises general (amal's queue, the PBX's region): the call, not the cr ticket
    r = await c["session"].get("/v1/cti/calls/riyadh-pbx:s1", headers=auth(c, "boss"))
    assert r.status == 200 and (await r.json())["open_tickets"] == []
    # chief's scope is cr only: neither the PBX's branch nor amal's queues
    r = await c["session"].get("/v1/cti/calls/riyadh-pbx:s1", headers=auth(c, "chief"))
    assert r.status == 404
