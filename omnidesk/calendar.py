"""Business time: when a queue's people work, and deadline arithmetic on it.

Pure (no I/O). A calendar resolves to a plan per local date (its slots, or why it
is closed); plans are cached, and the open intervals of whole years are flattened
into sorted epoch arrays with running totals, so `add_business_time` and
`business_time_between` are two bisections each, exact to the microsecond, and
correct across DST because intervals are real (UTC) time.

Precedence on a date: closure > holiday > special hours `on` that date > weekend >
special hours over a range (working days only) > `day_slots` for the weekday > `slots`.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from omnidesk.config import WEEKDAYS, CalendarConfig, HolidaySource, SpecialHours
from omnidesk.errors import ConfigError, OmnideskError

DEFAULT_TIMEZONE = "Asia/Riyadh"
DEFAULT_WORKING_DAYS = ("sun", "mon", "tue", "wed", "thu")
DEFAULT_SLOTS = ("08:00-16:00",)
NATIONAL = "national"
MAX_SEARCH_YEARS = 30  # a deadline further away means the calendar (almost) never opens
_SLOT = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


class CalendarError(OmnideskError):
    """A calendar cannot answer: naive datetime, or no working time within reach."""


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    """Minutes from the local midnight of the day the slot starts; `end` > 1440 runs past it."""

    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> Slot:
        match = _SLOT.match(text.strip())
        if not match:
            raise ValueError(f"not a slot: {text!r} (use HH:MM-HH:MM)")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"not a time of day in slot {text!r}")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end == start:
            raise ValueError(f"empty slot {text!r}")
        if end < start:  # 22:00-02:00 belongs to the day it starts
            end += 1440
        return cls(start, end)

    def __str__(self) -> str:
        def hm(minutes: int) -> str:
            return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"

        return f"{hm(self.start)}-{hm(self.end)}"


def _slots(texts: list[str] | tuple[str, ...], where: str) -> tuple[Slot, ...]:
    try:
        slots = sorted(Slot.parse(t) for t in texts)
    except ValueError as exc:
        raise ConfigError([f"{where}: {exc}"]) from None
    for a, b in pairwise(slots):
        if b.start < a.end:
            raise ConfigError([f"{where}: slots {a} and {b} overlap"])
    if slots and slots[-1].end - 1440 > slots[0].start:
        raise ConfigError([f"{where}: slot {slots[-1]} runs into the next day's {slots[0]}"])
    return tuple(slots)


@dataclass(frozen=True, slots=True)
class DayPlan:
    """One local date: the slots open that day, their real intervals, or why it is closed."""

    day: date
    slots: tuple[Slot, ...]
    spans: tuple[tuple[float, float], ...]  # epoch seconds, one per slot
    closed_because: str | None = None  # "weekend", "holiday: ...", "closure", "special hours: ..."
    note: str | None = None  # "special hours: Ramadan" when special hours shaped the day


@dataclass(frozen=True, slots=True)
class _Index:
    """Open intervals of whole local years, merged, with running business-second totals."""

    years: tuple[int, int]
    lo: float  # epoch range the index is valid for
    hi: float
    starts: list[float]
    ends: list[float]
    cum: list[float]  # business seconds before interval i
    cum_end: list[float]  # business seconds up to the end of interval i

    def position(self, t: float) -> float:
        """Business seconds from the index's origin to t (t within lo..hi)."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        return self.cum[i] + min(t, self.ends[i]) - self.starts[i]


@dataclass(frozen=True)
class _Special:
    name: str
    on: date | None
    start: date | None
    end: date | None
    slots: tuple[Slot, ...]


@dataclass(frozen=True)
class CalendarSettings:
    """A calendar with inheritance resolved and defaults filled in."""

    name: str
    timezone: str = DEFAULT_TIMEZONE
    working_days: frozenset[int] = frozenset(WEEKDAYS.index(d) for d in DEFAULT_WORKING_DAYS)
    slots: tuple[Slot, ...] = tuple(Slot.parse(s) for s in DEFAULT_SLOTS)
    day_slots: Mapping[int, tuple[Slot, ...]] = field(default_factory=dict)
    holidays: HolidaySource = field(default_factory=HolidaySource)
    closures: Mapping[date, str] = field(default_factory=dict)  # date -> calendar that closed it
    special: tuple[_Special, ...] = ()


class BusinessCalendar:
    """Deadline arithmetic in one calendar. Aware datetimes in, UTC datetimes out."""

    def __init__(self, settings: CalendarSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.tz = ZoneInfo(settings.timezone)
        src = settings.holidays
        self._holidays = holidays_lib.country_holidays(
            src.country, subdiv=src.subdivision, observed=src.observed, language="en_US"
        )
        self._plans: dict[date, DayPlan] = {}
        self._index: _Index | None = None  # replaced whole, so readers never see it half-built
        self._lock = threading.Lock()
        self.business_day_seconds = self._usual_day_seconds()

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.name!r}, {self.settings.timezone})"

    # ------------------------------------------------------------ days

    def plan(self, day: date) -> DayPlan:
        cached = self._plans.get(day)
        if cached is None:
            cached = self._plans[day] = self._make_plan(day)
        return cached

    def _make_plan(self, day: date) -> DayPlan:
        s = self.settings
        if day in s.closures:
            return DayPlan(day, (), (), closed_because=f"closure ({s.closures[day]})")
        holiday = self._holidays.get(day)
        if holiday:
            return DayPlan(day, (), (), closed_because=f"holiday: {holiday}")
        weekday = day.weekday()
        slots: tuple[Slot, ...] | None = None
        note = None
        for sp in reversed(s.special):  # later (child) entries win
            if sp.on == day:
                slots, note = sp.slots, f"special hours: {sp.name or day.isoformat()}"
                break
        if slots is None:
            if weekday not in s.working_days:
                return DayPlan(day, (), (), closed_because="weekend")
            for sp in reversed(s.special):
                if sp.start is not None and sp.end is not None and sp.start <= day <= sp.end:
                    slots, note = sp.slots, f"special hours: {sp.name or 'special'}"
                    break
        if slots is None:
            slots = s.day_slots.get(weekday, s.slots)
        if not slots:
            return DayPlan(day, (), (), closed_because=note or "no slots", note=note)
        midnight = datetime.combine(day, time(0), tzinfo=self.tz)
        spans = []
        for slot in slots:
            a = (midnight + timedelta(minutes=slot.start)).timestamp()
            b = (midnight + timedelta(minutes=slot.end)).timestamp()
            spans.append((a, max(a, b)))
        return DayPlan(day, slots, tuple(spans), note=note)

    def _usual_day_seconds(self) -> int:
        """The most common working-day length: what "1d" means in this calendar."""
        lengths = Counter(
            sum(sl.end - sl.start for sl in self.settings.day_slots.get(wd, self.settings.slots))
            for wd in self.settings.working_days
        )
        minutes = max(lengths.items(), key=lambda kv: (kv[1], kv[0]))[0] if lengths else 0
        return minutes * 60 or 8 * 3600

    # ------------------------------------------------------------ the index

    def _cover(self, t: float, u: float | None = None) -> _Index:
        """An index whose range holds t and u (rebuilt, under a lock, when it does not)."""
        idx = self._index
        if idx is not None and idx.lo <= t <= idx.hi and (u is None or idx.lo <= u <= idx.hi):
            return idx
        return self._rebuild(t) if u is None else self._rebuild(t, u)

    def _rebuild(self, *times: float) -> _Index:
        with self._lock:
            idx = self._index
            years = [datetime.fromtimestamp(t, self.tz).year for t in times]
            if not all(1 < y < 9999 for y in years):
                raise CalendarError(f"calendar {self.name!r}: time out of range")
            lo, hi = min(years) - 1, max(years) + 1
            if idx is not None:
                lo, hi = min(lo, idx.years[0]), max(hi, idx.years[1])
            if idx is None or (lo, hi) != idx.years:
                idx = self._index = self._build(lo, hi)
            return idx

    def _extend_forward(self, idx: _Index, start: float) -> _Index:
        lo, hi = idx.years
        if hi - datetime.fromtimestamp(start, self.tz).year > MAX_SEARCH_YEARS:
            raise CalendarError(
                f"calendar {self.name!r} has no working time in {MAX_SEARCH_YEARS} years"
            )
        with self._lock:
            current = self._index
            if current is not None and current.years[1] > hi:
                return current
            new = self._index = self._build(min(lo, current.years[0]) if current else lo, hi + 2)
            return new

    def _build(self, lo_year: int, hi_year: int) -> _Index:
        first, last = date(lo_year, 1, 1), date(hi_year, 12, 31)
        lo = datetime.combine(first, time(0), tzinfo=self.tz).timestamp()
        hi = datetime.combine(last + timedelta(days=1), time(0), tzinfo=self.tz).timestamp()
        merged: list[list[float]] = []
        day = first - timedelta(days=1)  # its slots may run past midnight into `first`
        while day <= last:
            for a, b in self.plan(day).spans:
                a, b = max(a, lo), min(b, hi)
                if b <= a:
                    continue
                if merged and a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            day += timedelta(days=1)
        cum, cum_end, total = [], [], 0.0
        for a, b in merged:
            cum.append(total)
            total += b - a
            cum_end.append(total)
        return _Index(
            (lo_year, hi_year), lo, hi, [a for a, _ in merged], [b for _, b in merged], cum, cum_end
        )

    # ------------------------------------------------------------ epoch API (hot path)

    def add_seconds(self, start: float, seconds: float) -> float:
        """Epoch form of `add_business_time`."""
        if seconds <= 0:
            return start
        idx = self._cover(start)
        while True:
            target = idx.position(start) + seconds
            j = bisect_left(idx.cum_end, target)
            if j < len(idx.cum_end):
                if idx.starts[j] <= start < idx.ends[j]:
                    return start + seconds
                return idx.starts[j] + (target - idx.cum[j])
            idx = self._extend_forward(idx, start)

    def seconds_between(self, a: float, b: float) -> float:
        """Epoch form of `business_time_between`."""
        if b < a:
            return -self.seconds_between(b, a)
        idx = self._cover(a, b)
        return idx.position(b) - idx.position(a)

    def next_open_ts(self, t: float) -> float:
        idx = self._cover(t)
        while True:
            i = bisect_right(idx.starts, t) - 1
            if i >= 0 and t < idx.ends[i]:
                return t
            if i + 1 < len(idx.starts):
                return idx.starts[i + 1]
            idx = self._extend_forward(idx, t)

    # ------------------------------------------------------------ datetime API

    def add_business_time(self, start: datetime, seconds: float) -> datetime:
        """The moment `seconds` of business time after `start` (UTC)."""
        return _utc(self.add_seconds(_ts(start), seconds))

    def business_time_between(self, a: datetime, b: datetime) -> float:
        """Business seconds from a to b (negative when b is before a)."""
        return self.seconds_between(_ts(a), _ts(b))

    def is_open(self, at: datetime) -> bool:
        t = _ts(at)
        return self.next_open_ts(t) == t

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open, else the start of the next working slot (UTC)."""
        return _utc(self.next_open_ts(_ts(at)))

    def explain(self, start: datetime, end: datetime, *, max_lines: int = 60) -> list[str]:
        """Why `end` is that much business time after `start`: slots used, days skipped."""
        a, b = _ts(start), _ts(end)
        if b < a:
            a, b = b, a
        total = self.seconds_between(a, b)
        lines = [
            f"calendar {self.name} ({self.settings.timezone}): {format_seconds(total)} of "
            f"business time from {_local(a, self.tz)} to {_local(b, self.tz)}"
        ]
        day = datetime.fromtimestamp(a, self.tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(b, self.tz).date()
        days: list[str] = []
        while day <= last:
            plan = self.plan(day)
            label = f"{day:%a %Y-%m-%d}"
            if plan.closed_because:
                if day_overlaps(day, a, b, self.tz):
                    days.append(f"{label}: skipped, {plan.closed_because}")
            else:
                used = []
                for slot, (s, e) in zip(plan.slots, plan.spans, strict=True):
                    part = min(e, b) - max(s, a)
                    if part > 0:
                        share = "" if part == e - s else f" ({format_seconds(part)} of it)"
                        used.append(f"{slot}{share}")
                if used:
                    extra = f" [{plan.note}]" if plan.note else ""
                    days.append(f"{label}: {', '.join(used)}{extra}")
            day += timedelta(days=1)
        if len(days) > max_lines:
            days = [*days[:max_lines], f"... and {len(days) - max_lines} more days"]
        return lines + days


def day_overlaps(day: date, a: float, b: float, tz: ZoneInfo) -> bool:
    """Whether the local date `day` lies (partly) within [a, b)."""
    start = datetime.combine(day, time(0), tzinfo=tz).timestamp()
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).timestamp()
    return start < b and a < end


def format_seconds(seconds: float) -> str:
    """4h00m, 2d 3h15m (d = 24 h of business time), 45s."""
    sign = "-" if seconds < 0 else ""
    s = round(abs(seconds))
    if s < 60:
        return f"{sign}{s}s"
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    text = f"{h}h{m:02d}m" + (f"{sec:02d}s" if sec else "")
    return sign + text


def _ts(at: datetime) -> float:
    if at.tzinfo is None or at.utcoffset() is None:
        raise CalendarError(f"naive datetime {at.isoformat()}: give a time zone")
    return at.timestamp()


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _local(t: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, tz).strftime("%a %Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------- building from config


def build_calendars(configs: Mapping[str, CalendarConfig]) -> dict[str, BusinessCalendar]:
    """One BusinessCalendar per configured name, plus "national" (defaults) when absent."""
    configs = dict(configs)
    configs.setdefault(NATIONAL, CalendarConfig())
    resolved: dict[str, CalendarSettings] = {}
    for name in configs:
        _resolve(name, configs, resolved, ())
    return {name: BusinessCalendar(settings) for name, settings in resolved.items()}


def _resolve(
    name: str,
    configs: Mapping[str, CalendarConfig],
    done: dict[str, CalendarSettings],
    chain: tuple[str, ...],
) -> CalendarSettings:
    if name in done:
        return done[name]
    if name in chain:
        raise ConfigError([f"calendars.{name}: inherits in a cycle: {' -> '.join(chain)}"])
    cfg = configs.get(name)
    if cfg is None:
        raise ConfigError([f"calendars.{chain[-1]}.inherits: calendar {name!r} does not exist"])
    base = (
        _resolve(cfg.inherits, configs, done, (*chain, name))
        if cfg.inherits
        else CalendarSettings(name=name)
    )
    where = f"calendars.{name}"
    day_slots = dict(base.day_slots)
    for wd, texts in cfg.day_slots.items():
        day_slots[WEEKDAYS.index(wd)] = _slots(texts, f"{where}.day_slots.{wd}")
    closures = dict(base.closures)
    closures.update({d: name for d in cfg.closures})
    specials = tuple(
        _special(sp, f"{where}.special_hours[{i}]") for i, sp in enumerate(cfg.special_hours)
    )
    settings = CalendarSettings(
        name=name,
        timezone=cfg.timezone or base.timezone,
        working_days=(
            frozenset(WEEKDAYS.index(d) for d in cfg.working_days)
            if cfg.working_days is not None
            else base.working_days
        ),
        slots=_slots(cfg.slots, f"{where}.slots") if cfg.slots is not None else base.slots,
        day_slots=day_slots,
        holidays=cfg.holidays or base.holidays,
        closures=closures,
        special=base.special + specials,
    )
    done[name] = settings
    return settings


def _special(sp: SpecialHours, where: str) -> _Special:
    return _Special(sp.name, sp.on, sp.from_, sp.to, _slots(sp.slots, where))


def calendar_from(config: CalendarConfig | None = None, name: str = NATIONAL) -> BusinessCalendar:
    """A single calendar with no parent: handy for tests and the CLI."""
    return build_calendars({name: config or CalendarConfig()})[name]
