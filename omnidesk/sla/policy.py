"""What SLA transitions need from the configuration: calendars and policies by name.

A clock counts business time in a calendar (`omnidesk.calendar`); the policy's own calendar
wins over the queue's. Unknown names raise `SlaError` naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from omnidesk.calendar import BusinessCalendar, build_calendars
from omnidesk.config import QueueConfigFile, SlaPolicyConfig
from omnidesk.sla.errors import SlaError


@dataclass(frozen=True)
class SlaContext:
    """What transitions need from the config: calendars by name and policies by name."""

    calendars: Mapping[str, BusinessCalendar]
    policies: Mapping[str, SlaPolicyConfig]

    @classmethod
    def from_config(cls, cfg: QueueConfigFile) -> SlaContext:
        return cls(build_calendars(cfg.calendars), dict(cfg.sla_policies))

    def calendar(self, name: str) -> BusinessCalendar:
        try:
            return self.calendars[name]
        except KeyError:
            raise SlaError(f"calendar {name!r} does not exist") from None

    def policy(self, name: str) -> SlaPolicyConfig:
        try:
            return self.policies[name]
        except KeyError:
            raise SlaError(f"SLA policy {name!r} does not exist") from None

    def calendar_for(self, policy_name: str, queue_calendar: str) -> str:
        """The policy's own calendar wins over the queue's."""
        return self.policy(policy_name).calendar or queue_calendar
