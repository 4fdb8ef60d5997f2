"""The routing step as the service uses it: config + compiled router + calendars.

The router itself is pure and knows no calendar; this is where the business-hours
fact is computed, so every caller (CLI, pipeline, rule tests) routes the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omnidesk.configload import LoadedConfig
from omnidesk.model import Customer, Decision, Inbound, Ticket
from router import Facts, Router, compile_router


@dataclass
class Routing:
    loaded: LoadedConfig
    router: Router
    calendars: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, loaded: LoadedConfig) -> Routing:
        return cls(loaded=loaded, router=compile_router(loaded.data), calendars=_calendars(loaded))

    def outside_business_hours(self, inbound: Inbound) -> bool:
        national = self.calendars.get("national")
        return national is not None and not national.is_open(inbound.received_at)

    def decide(
        self,
        inbound: Inbound,
        customer: Customer | None = None,
        ticket: Ticket | None = None,
        *,
        trace: bool = True,
    ) -> Decision:
        facts = Facts.from_inbound(
            inbound,
            customer=customer,
            ticket=ticket,
            outside_business_hours=self.outside_business_hours(inbound),
        )
        return self.router.route(facts, trace=trace)


def _calendars(loaded: LoadedConfig) -> dict[str, Any]:
    try:
        from omnidesk.calendar import build_calendars
    except ImportError:  # the SLA calendar lands separately; without it every hour is open
        return {}
    return dict(build_calendars(loaded.data.calendars))
