"""Every event type written anywhere is an omnidesk.events.EventType, every Lua script loads,
and the events the scripts write decode into their structs.

The writers are found by reading the sources: in Lua, the literal types given to
`write_event` (lua/ticket_lib.lua, the one place that XADDs to the stream) and to intake's
`event`; in Python, the literals given as a type (`add_event("..."`, ``"type": "..."``,
``event="..."``, the SLA sweeper's ``"kind": "..."``, ``EVENT = "..."``), which should be
members already.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import msgspec
import pytest
import redis

from omnidesk import events
from omnidesk.events import STRUCTS, EventType
from omnidesk.runtime import Runtime
from omnidesk.store import lua
from tests.storekit import REDIS_URL, web

ROOT = Path(__file__).resolve().parent.parent / "omnidesk"
LUA_TYPE = re.compile(
    r'(?:write_event\(p,\s*|\bevent\(|"type",\s*)"([a-z_]+)"'  # write_event / intake's event
)
LUA_DYNAMIC = re.compile(r"(?<!function )write_event\(p,\s*([^\",\s]+)")
PY_TYPE = re.compile(
    r'(?:add_event\(\s*|_event\(pipe,\s*|"type":\s*|event=|EVENT = )'
    r'"([a-z_]+)"(?:\s+if\b[^"]*else\s+"([a-z_]+)")?'
)
# the SLA sweeper names its ladder events in the templates it hands sla_commit.lua ("kind");
# elsewhere "kind" is a connector's or an identity's
SLA_KIND = re.compile(r'"kind":\s*"([a-z_]+)"(?:\s+if\b[^"]*else\s+"([a-z_]+)")?')
# a type passed in as a variable: where the value comes from (checked by the Python scan)
DYNAMIC_KINDS = {
    "intake.lua": {"kind"},  # intake's event(): its literal calls are scanned
    "move.lua": {"a.event"},  # Store.move(event: EventType)
    "sla_commit.lua": {"s.kind"},  # omnidesk.sweeper's templates ("kind": ...)
}


def scripts() -> dict[str, str]:
    folder = resources.files("omnidesk.lua")
    return {f.name: f.read_text("utf-8") for f in folder.iterdir() if f.name.endswith(".lua")}


def lua_types() -> dict[str, set[str]]:
    return {name: set(LUA_TYPE.findall(text)) for name, text in scripts().items()}


def python_types() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        text = path.read_text("utf-8")
        pairs = PY_TYPE.findall(text)
        if "sweeper" in path.name or "sla" in path.parts or path.name == "sla.py":
            pairs += SLA_KIND.findall(text)
        hits = {t for pair in pairs for t in pair if t}
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    return found


def test_every_script_loads_into_redis() -> None:
    r = redis.Redis.from_url(REDIS_URL)
    names = sorted(scripts())
    assert "ticket_lib.lua" in names and len(names) > 20
    for name in names:
        sha = r.script_load(lua(name.removesuffix(".lua")))
        assert r.script_exists(sha) == [True], name


def test_every_event_type_written_in_lua_is_known() -> None:
    written = lua_types()
    unknown = {f"{name}: {t}" for name, kinds in written.items() for t in kinds} - {
        f"{name}: {t.value}" for name in written for t in EventType
    }
    assert not unknown
    # the scan sees the writers: the types every script family is known to write
    seen = set().union(*written.values())
    assert {"ticket_opened", "assigned", "status_changed", "csat", "merged", "escalated"} <= seen


def test_only_ticket_lib_appends_to_the_stream_and_dynamic_types_are_accounted_for() -> None:
    for name, text in scripts().items():
        if name != "ticket_lib.lua":
            assert '"XADD"' not in text, f"{name} writes the stream itself: use write_event"
        dynamic = set(LUA_DYNAMIC.findall(text))
        assert dynamic <= DYNAMIC_KINDS.get(name, set()), f"{name}: {dynamic}"


def test_every_event_type_written_in_python_is_known() -> None:
    found = python_types()
    unknown = {
        f"{path}: {t}"
        for path, kinds in found.items()
        for t in kinds
        if t not in {e.value for e in EventType}
    }
    assert not unknown


def test_the_scan_catches_an_unknown_type() -> None:
    assert LUA_TYPE.findall('write_event(p, "ticket_opend", tid') == ["ticket_opend"]
    assert SLA_KIND.findall('"kind": "sla_breachd" if at else "sla_warned"') == [
        ("sla_breachd", "sla_warned")
    ]
    assert "ticket_opend" not in {e.value for e in EventType}


def test_every_type_has_its_struct_and_an_unknown_one_is_refused() -> None:
    assert set(STRUCTS) == set(EventType)
    with pytest.raises(msgspec.ValidationError):
        events.decode({"type": "ticket_opend", "ticket": "x"})
    with pytest.raises(ValueError):
        EventType("ticket_opend")


def test_events_written_by_the_scripts_decode_into_their_structs(runtime: Runtime) -> None:
    store = runtime.store
    opened = runtime.process([web("commercial registration", email="ev@example.sa")]).results
    tid = opened[0].ticket_id
    store.set_status(tid, "pending_customer", reason="waiting for the CR number")
    store.move(tid, "general", "sup1", event=EventType.TRANSFERRED, reason="wrong queue")
    got = [events.decode(fields) for _, fields in store.events()]
    kinds = [type(e) for e in got]
    assert events.TicketOpened in kinds and events.Routed in kinds
    changed = next(e for e in got if isinstance(e, events.StatusChanged))
    assert (changed.to, changed.reason, changed.ticket) == (
        "pending_customer",
        "waiting for the CR number",
        tid,
    )
    moved = next(e for e in got if isinstance(e, events.Transferred))
    assert moved.reason == "wrong queue" and moved.actor == "sup1" and moved.ts > 0
    opened_event = next(e for e in got if isinstance(e, events.TicketOpened))
    assert opened_event.created > 0 and opened_event.customer
