"""Directory login edge cases against the real slapd (tests/ldapkit.py): a DN with an escaped
comma (AD's "CN=Smith\\, John,..."), a ticket reassigned between the sync's read and its
release, a Redis failure during a sync pass, and the unknown name's dummy bind."""

from __future__ import annotations

from typing import Any

from omnidesk.agents.directory import dn_key
from omnidesk.agents.directory_sync import sync
from tests.ldapkit import BASE, group_dn, slapd  # noqa: F401
from tests.test_directory_login import desk, login  # noqa: F401

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
