"""What the reports count, and in which terms: dimensions, statuses, SLA targets, duration
buckets, and the `Context` taken from the config (time zone, queue regions, calendars,
policy targets). Pure, no I/O.

The counting itself ("the fold": how each event changes the figures) is SQL over the
events in PostgreSQL (omnidesk.reports.sql, omnidesk.reports.days), checked against the
plain Python of omnidesk.reports.recompute. Dimensions are (queue, channel, segment,
region, agent) as they stand when the event happens, so a ticket transferred from A to B
counts its opening in A and its resolution in B. The event fields relied on are listed in
docs/reports.md; anything else is ignored.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from omnidesk.events import EventType
from omnidesk.model import SYSTEM_ACTORS

DIMS = ("queue", "channel", "segment", "region", "agent")
OPEN = frozenset({"new", "open", "pending_customer"})
DONE = frozenset({"resolved", "closed"})
SLA_TARGETS = ("first_response", "next_response", "resolution")
# Upper bounds (seconds) of the duration histogram buckets; the last bucket is "inf".
BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 432000,
           604800, 1209600, 2592000)  # fmt: skip
BUCKET_LABELS = (*(str(b) for b in BUCKETS), "inf")
REPEAT_WINDOW_MS = 30 * 86400 * 1000  # a ticket within 30 days of the customer's last one
LIST_KINDS = ("breached", "default", "comment")
TOTAL_ONLY = ("opened_h:", "rule:")  # metrics broken down by day only, not per dimension
DAY_METRICS = frozenset({"opened", "resolved", "backlog"})  # the only per-day series shown
STATUS_EVENTS = {
    EventType.RESOLVED: "resolved",
    EventType.CLOSED: "closed",
    EventType.REOPENED: "open",
}
# Bumped when what the fold counts changes, so stored folded days (reports/days.py) refold.
FOLD_VERSION = 2


def person(actor: str | None) -> str:
    """The actor if it is a person (an agent or supervisor), else ""."""
    return "" if (actor or "") in SYSTEM_ACTORS else str(actor)


def bucket_of(seconds: float) -> str:
    return BUCKET_LABELS[bisect_left(BUCKETS, seconds)]


def clean(value: Any) -> str:
    """A dimension value as counted (``|`` is reserved as the separator of dimensions)."""
    return str(value or "").replace("|", "/")


BusinessSeconds = Callable[[str, int, int], int]  # (queue, start_ms, end_ms) -> seconds


@dataclass(frozen=True)
class Context:
    """What the fold needs from the config: time zone, queue regions, calendars, policies."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Riyadh"))
    queue_regions: Mapping[str, str] = field(default_factory=dict)
    policy_targets: Mapping[str, frozenset[str]] = field(default_factory=dict)
    business: BusinessSeconds | None = None  # None: business time = wall time
    # memo table (minute -> local day/hour): recomputation's hot path
    _minutes: dict[int, tuple[str, int]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_config(cls, cfg: Any) -> Context:
        from omnidesk.calendar import NATIONAL, build_calendars

        calendars = build_calendars(cfg.calendars)
        national = calendars.get(NATIONAL) or next(iter(calendars.values()))
        by_queue = {name: calendars.get(q.calendar, national) for name, q in cfg.queues.items()}

        def business(queue: str, a_ms: int, b_ms: int) -> int:
            cal = by_queue.get(queue, national)
            return int(cal.seconds_between(a_ms / 1000, b_ms / 1000))

        targets = {
            name: frozenset(t for t in SLA_TARGETS if getattr(p, t) is not None)
            for name, p in cfg.sla_policies.items()
        }
        tz = getattr(national, "tz", None) or ZoneInfo("Asia/Riyadh")
        regions = {name: q.region for name, q in cfg.queues.items() if q.region}
        return cls(tz=tz, queue_regions=regions, policy_targets=targets, business=business)

    def local(self, ts_ms: int) -> datetime:
        return datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(self.tz)

    def day_hour(self, ts_ms: int) -> tuple[str, int]:
        minute = ts_ms // 60_000
        hit = self._minutes.get(minute)
        if hit is None:
            if len(self._minutes) > 500_000:
                self._minutes.clear()
            at = self.local(minute * 60_000)
            hit = self._minutes[minute] = (at.strftime("%Y-%m-%d"), at.hour)
        return hit

    def day(self, ts_ms: int) -> str:
        return self.day_hour(ts_ms)[0]

    def region(self, queue: str, ticket_region: str) -> str:
        return self.queue_regions.get(queue) or ticket_region or ""

    def business_seconds(self, queue: str, a_ms: int, b_ms: int) -> int:
        if self.business is None:
            return max(0, (b_ms - a_ms) // 1000)
        return max(0, self.business(queue, a_ms, b_ms))

    def has_target(self, policy: str, target: str) -> bool:
        """Does the ticket's SLA policy set this target? Unknown policies: yes if named."""
        if not policy:
            return False
        known = self.policy_targets.get(policy)
        return True if known is None else target in known
