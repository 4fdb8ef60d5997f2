"""Helpers for the agents tests: the agents config on the real Redis under a random prefix,
a runtime to open tickets through the real intake, and an AgentService over both."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import holidays

from omnidesk.agents.service import AgentService
from omnidesk.config import AgentConfig
from omnidesk.configload import LoadedConfig, load_config
from omnidesk.model import Outbound
from omnidesk.runtime import Runtime
from tests.storekit import REDIS_URL

AGENTS_CONFIG = Path(__file__).parent / "fixtures" / "config" / "agents.yaml"


def agents_config(
    prefix: str, state_dir: Path, extra_agents: list[dict[str, Any]] = ()
) -> LoadedConfig:
    loaded = load_config(AGENTS_CONFIG)
    service = loaded.data.service.model_copy(
        update={"key_prefix": prefix, "state_dir": str(state_dir), "redis_url": REDIS_URL}
    )
    agents = [*loaded.data.agents, *(AgentConfig(**a) for a in extra_agents)]
    data = loaded.data.model_copy(update={"service": service, "agents": agents})
    return replace(loaded, data=data)


class Outbox:
    """Stands in for the broker hand-off where a test only checks what would be sent."""

    def __init__(self) -> None:
        self.sent: list[Outbound] = []

    def __call__(self, outbound: Outbound) -> None:
        self.sent.append(outbound)


def make(
    prefix: str,
    tmp: Path,
    extra_agents: list[dict[str, Any]] = (),
    send: Any = None,
    records: Any = None,
) -> tuple[Runtime, AgentService, Outbox]:
    loaded = agents_config(prefix, tmp / "state", extra_agents)
    runtime = Runtime.from_config(loaded)
    outbox = Outbox()
    service = AgentService(
        store=runtime.store,
        config=lambda: loaded.data,
        send_reply=send or outbox,
        public_url="http://csat.test",
        records=records,
        archive=runtime.archive,
    )
    return runtime, service, outbox


def working_country() -> str:
    """A country of which today and tomorrow are no public holiday (a holiday closes even
    a 24/7 calendar's day, and the holidays cannot be turned off)."""
    days = [date.today() + timedelta(days=n) for n in (-1, 0, 1)]
    for country in ("SA", "GB", "JP", "US"):
        listed = holidays.country_holidays(country, years={d.year for d in days})
        if not any(d in listed for d in days):
            return country
    raise AssertionError(f"every candidate country has a holiday around {days[1]}")
