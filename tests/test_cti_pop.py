"""The screen-pop survives Redis failing after PostgreSQL took the event: the PBX gets 503,
resends, and the resend (a duplicate in the call book) sends the pop, once; a further
resend sends nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from omnidesk.agents.cti_calls import CallEvent
from omnidesk.agents.cti_desk import CtiDesk
from omnidesk.errors import TransientError
from omnidesk.store import Store
from tests.services import free_port
from tests.test_cti import DAY, centre  # noqa: F401 (centre: the fixture)


def pops(service: Any) -> list[str]:
    events = service.store.r.xrange(service.store.keys.events())
    return [f["call"] for _, f in events if f.get("type") == "call_answered"]


def test_a_pop_lost_to_redis_is_sent_by_the_resend_once(centre: dict[str, Any]) -> None:
    service = centre["service"]
    dead = Store.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    # the same desk and call book, its Redis gone (the caller has no number to look up there)
    broken = CtiDesk(replace(service, store=dead))
    answered = CallEvent(pbx="riyadh-pbx", event_id="e1", call_id="p1", type="answered",
                         at=DAY.replace(hour=9), agent="amal", extension="2001")  # fmt: skip
    with pytest.raises(TransientError):
        broken.event(answered)  # PostgreSQL committed the event; the pop did not go out
    assert pops(service) == []
    desk = CtiDesk(service)
    assert desk.event(answered)["duplicate"] is True  # the PBX's resend after its 503
    assert pops(service) == ["riyadh-pbx:p1"]
    desk.event(answered)
    assert pops(service) == ["riyadh-pbx:p1"]  # sent once


def test_a_call_answered_again_by_another_agent_pops_for_that_agent(
    centre: dict[str, Any],
) -> None:
    """A transfer the PBX reports as a second `answered` pops for the new agent, once."""
    service = centre["service"]
    desk = CtiDesk(service)
    first = CallEvent(pbx="riyadh-pbx", event_id="x1", call_id="t1", type="answered",
                      at=DAY.replace(hour=9), agent="amal", extension="2001")  # fmt: skip
    second = replace(first, event_id="x2", at=DAY.replace(hour=9, minute=5), agent="omar",
                     extension="2002")  # fmt: skip
    desk.event(first)
    desk.event(second)
    desk.event(second)  # its resend
    events = service.store.r.xrange(service.store.keys.events())
    popped = [(f["call"], f["agent"]) for _, f in events if f.get("type") == "call_answered"]
    assert popped == [("riyadh-pbx:t1", "amal"), ("riyadh-pbx:t1", "omar")]
