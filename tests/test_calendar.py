"""Business time: deadlines across weekends, Eid, lunch gaps, Ramadan hours, night slots,
closures, inheritance and DST; plus property tests that add and between are inverse."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnidesk.calendar import CalendarError, build_calendars, calendar_from
from omnidesk.config import CalendarConfig, parse_duration
from omnidesk.errors import ConfigError

RIYADH = ZoneInfo("Asia/Riyadh")
LONDON = ZoneInfo("Europe/London")
H = 3600


def riyadh(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=RIYADH)


def cal(**kwargs: object):
    return calendar_from(CalendarConfig.model_validate(kwargs), name="test")


NATIONAL = calendar_from()
LUNCH = cal(slots=["08:00-12:00", "13:00-16:00"])


def test_defaults_are_riyadh_sun_to_thu_eight_to_four() -> None:
    assert NATIONAL.settings.timezone == "Asia/Riyadh"
    assert NATIONAL.business_day_seconds == 8 * H
    assert NATIONAL.is_open(riyadh(2026, 1, 11, 8))  # Sunday
    assert not NATIONAL.is_open(riyadh(2026, 1, 11, 16))
    assert not NATIONAL.is_open(riyadh(2026, 1, 9, 10))  # Friday


def test_deadline_across_a_weekend() -> None:
    start = riyadh(2026, 1, 8, 15)  # Thursday
    assert start.strftime("%a") == "Thu"
    due = NATIONAL.add_business_time(start, 2 * H)
    assert due == riyadh(2026, 1, 11, 9)  # Sunday
    assert due.tzinfo is UTC
    assert NATIONAL.business_time_between(start, due) == 2 * H
    text = "\n".join(NATIONAL.explain(start, due))
    assert "Fri 2026-01-09: skipped, weekend" in text
    assert "Sat 2026-01-10: skipped, weekend" in text


def test_deadline_across_eid_al_fitr_2026() -> None:
    eid = {d for d, name in holidays.SA(years=2026).items() if "Fitr" in name}
    assert {date(2026, 3, d) for d in range(19, 25)} <= eid  # what the package says: 19-24 March
    start = riyadh(2026, 3, 18, 14)  # Wednesday before Eid
    due = NATIONAL.add_business_time(start, 4 * H)
    assert due == riyadh(2026, 3, 25, 10)  # 2h Wednesday, then the first working day after Eid
    assert NATIONAL.business_time_between(start, due) == 4 * H
    assert not any(NATIONAL.is_open(riyadh(2026, 3, d, 10)) for d in range(19, 25))
    lines = NATIONAL.explain(start, due)
    skipped = [line for line in lines if "Eid al-Fitr" in line]
    assert len(skipped) == 6
    assert any("(observed)" in line for line in skipped)


def test_observed_founding_day_2025_is_skipped() -> None:
    # 22 Feb 2025 is a Saturday; the package observes it on Sunday the 23rd.
    assert not NATIONAL.is_open(riyadh(2025, 2, 23, 10))
    assert NATIONAL.next_open(riyadh(2025, 2, 23, 10)) == riyadh(2025, 2, 24, 8)


def test_deadline_across_a_lunch_gap() -> None:
    assert LUNCH.business_day_seconds == 7 * H
    start = riyadh(2026, 1, 11, 11)
    assert LUNCH.add_business_time(start, 2 * H) == riyadh(2026, 1, 11, 14)
    assert LUNCH.add_business_time(start, 1 * H) == riyadh(2026, 1, 11, 12)  # ends the slot
    assert LUNCH.business_time_between(start, riyadh(2026, 1, 11, 14)) == 2 * H
    assert not LUNCH.is_open(riyadh(2026, 1, 11, 12, 30))
    assert LUNCH.next_open(riyadh(2026, 1, 11, 12, 30)) == riyadh(2026, 1, 11, 13)
    lines = LUNCH.explain(start, riyadh(2026, 1, 11, 14))
    assert "Sun 2026-01-11: 08:00-12:00 (1h00m of it), 13:00-16:00 (1h00m of it)" in lines
    assert parse_duration("5d", business_day_seconds=LUNCH.business_day_seconds) == 35 * H


RAMADAN = cal(
    special_hours=[
        {"name": "Ramadan", "from": "2026-02-18", "to": "2026-03-18", "slots": ["10:00-15:00"]},
        {"name": "open day", "on": "2026-03-07", "slots": ["09:00-11:00"]},  # a Saturday
        {"name": "drill", "on": "2026-03-03", "slots": []},  # a Tuesday
    ]
)


def test_ramadan_special_hours() -> None:
    start = riyadh(2026, 3, 1, 14)  # Sunday in Ramadan
    due = RAMADAN.add_business_time(start, 2 * H)
    assert due == riyadh(2026, 3, 2, 11)
    assert not RAMADAN.is_open(riyadh(2026, 3, 1, 9))
    assert not RAMADAN.is_open(riyadh(2026, 2, 27, 11))  # Friday stays closed in the range
    assert "[special hours: Ramadan]" in RAMADAN.explain(start, due)[-1]
    # before and after the range: the usual 08:00-16:00
    assert RAMADAN.is_open(riyadh(2026, 2, 17, 8))
    assert RAMADAN.is_open(riyadh(2026, 3, 25, 15))


def test_special_hours_on_a_date_open_a_weekend_and_empty_slots_close_a_day() -> None:
    assert RAMADAN.is_open(riyadh(2026, 3, 7, 10))  # Saturday open day
    assert not RAMADAN.is_open(riyadh(2026, 3, 7, 12))
    assert not RAMADAN.is_open(riyadh(2026, 3, 3, 11))
    due = RAMADAN.add_business_time(riyadh(2026, 3, 2, 14), 2 * H)  # Monday 14:00
    assert due == riyadh(2026, 3, 4, 11)  # 1h Monday, Tuesday closed, 1h Wednesday
    assert any(
        "skipped, special hours: drill" in line
        for line in RAMADAN.explain(riyadh(2026, 3, 2, 14), due)
    )


def test_slot_past_midnight_belongs_to_the_day_it_starts() -> None:
    night = cal(slots=["22:00-02:00"])
    assert night.business_day_seconds == 4 * H
    assert night.is_open(riyadh(2026, 1, 9, 1))  # Friday 01:00: Thursday's shift
    assert not night.is_open(riyadh(2026, 1, 10, 1))  # Saturday 01:00: Friday's, a weekend
    assert not night.is_open(riyadh(2026, 1, 11, 1))  # Sunday 01:00: Saturday's
    assert night.is_open(riyadh(2026, 1, 11, 23))
    start = riyadh(2026, 1, 8, 23)  # Thursday 23:00
    due = night.add_business_time(start, 4 * H)
    assert due == riyadh(2026, 1, 11, 23)  # 3h until Friday 02:00, then Sunday 22:00 + 1h
    assert night.business_time_between(start, due) == 4 * H


def test_closures_and_inheritance() -> None:
    cals = build_calendars(
        {
            "national": CalendarConfig.model_validate(
                {
                    "special_hours": [
                        {
                            "name": "Ramadan",
                            "from": "2026-02-18",
                            "to": "2026-03-18",
                            "slots": ["10:00-15:00"],
                        }
                    ]
                }
            ),
            "riyadh_branch": CalendarConfig.model_validate(
                {"inherits": "national", "closures": ["2026-01-12"]}
            ),
            "riyadh_evening": CalendarConfig.model_validate(
                {"inherits": "riyadh_branch", "slots": ["16:00-22:00"], "closures": ["2026-01-13"]}
            ),
        }
    )
    national, branch, evening = cals["national"], cals["riyadh_branch"], cals["riyadh_evening"]
    start = riyadh(2026, 1, 11, 15)  # Sunday
    assert national.add_business_time(start, 2 * H) == riyadh(2026, 1, 12, 9)
    assert branch.add_business_time(start, 2 * H) == riyadh(2026, 1, 13, 9)
    assert "Mon 2026-01-12: skipped, closure (riyadh_branch)" in branch.explain(
        start, riyadh(2026, 1, 13, 9)
    )
    # the grandchild keeps both closures, overrides the slots, and still has Ramadan hours
    assert not evening.is_open(riyadh(2026, 1, 12, 17))
    assert not evening.is_open(riyadh(2026, 1, 13, 17))
    assert evening.is_open(riyadh(2026, 1, 14, 21))
    assert evening.is_open(riyadh(2026, 3, 1, 11)) and not evening.is_open(riyadh(2026, 3, 1, 17))
    assert branch.is_open(riyadh(2026, 3, 1, 11)) and not branch.is_open(riyadh(2026, 3, 1, 9))


def test_national_exists_even_when_not_configured() -> None:
    cals = build_calendars({"back_office": CalendarConfig(working_days=["sun", "mon"])})
    assert set(cals) == {"national", "back_office"}
    assert not cals["back_office"].is_open(riyadh(2026, 1, 13, 10))  # Tuesday


def test_per_weekday_slots() -> None:
    short_thursday = cal(day_slots={"thu": ["08:00-12:00"]})
    assert short_thursday.business_day_seconds == 8 * H  # the usual day, not Thursday's
    start = riyadh(2026, 1, 8, 11)  # Thursday
    assert short_thursday.add_business_time(start, 2 * H) == riyadh(2026, 1, 11, 9)


def test_dst_time_zone_counts_real_time() -> None:
    nights = cal(
        timezone="Europe/London",
        working_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        slots=["00:00-04:00"],
    )
    spring = datetime(2026, 3, 29, tzinfo=LONDON)  # clocks go forward at 01:00 GMT
    assert nights.business_time_between(spring, spring.replace(hour=4)) == 3 * H
    autumn = datetime(2026, 10, 25, tzinfo=LONDON)  # clocks go back at 02:00 BST
    assert nights.business_time_between(autumn, autumn.replace(hour=4)) == 5 * H
    start = datetime(2026, 3, 28, 3, tzinfo=LONDON)
    assert nights.add_business_time(start, 2 * H) == datetime(2026, 3, 29, 1, tzinfo=UTC)

    office = cal(timezone="Europe/London", working_days=["mon", "tue", "wed", "thu", "fri"])
    friday = datetime(2026, 3, 27, 15, tzinfo=LONDON)  # GMT
    due = office.add_business_time(friday, 2 * H)
    assert due == datetime(2026, 3, 30, 9, tzinfo=LONDON)  # BST
    assert due == datetime(2026, 3, 30, 8, tzinfo=UTC)


def test_far_deadlines_and_early_starts_extend_the_index() -> None:
    start = riyadh(2026, 1, 11, 8)
    due = NATIONAL.add_business_time(start, 2000 * 8 * H)  # about eight years of work days
    assert due.year >= 2033
    assert NATIONAL.business_time_between(start, due) == 2000 * 8 * H
    early = riyadh(2019, 6, 2, 9)
    assert NATIONAL.add_business_time(early, H) == riyadh(2019, 6, 2, 10)


def test_bad_input_is_a_typed_error() -> None:
    with pytest.raises(CalendarError, match="naive"):
        NATIONAL.add_business_time(datetime(2026, 1, 11, 9), H)
    with pytest.raises(ConfigError, match="overlap"):
        cal(slots=["08:00-12:00", "11:00-14:00"])
    with pytest.raises(ConfigError, match="cycle"):
        build_calendars({"a": CalendarConfig(inherits="b"), "b": CalendarConfig(inherits="a")})
    with pytest.raises(ConfigError, match="not a time of day"):
        cal(slots=["24:30-08:00"])
    never = cal(working_days=["sun"], closures=[])
    never_open = calendar_from(
        CalendarConfig.model_validate(
            {"special_hours": [{"from": "2000-01-01", "to": "2100-01-01", "slots": []}]}
        )
    )
    assert never.add_business_time(riyadh(2026, 1, 12, 9), H) == riyadh(2026, 1, 18, 9)
    with pytest.raises(CalendarError, match="no working time"):
        never_open.add_business_time(riyadh(2026, 1, 12, 9), H)


def test_hot_path_is_fast_enough_for_a_million_deadlines() -> None:
    import time as wall

    t0 = riyadh(2026, 1, 1).timestamp()
    began = wall.perf_counter()
    for i in range(20_000):
        NATIONAL.add_seconds(t0 + i * 613.0, 5 * 8 * H)
    per_call = (wall.perf_counter() - began) / 20_000
    assert per_call < 50e-6  # ~2 µs here; a generous bound for a loaded CI box


# ---------------------------------------------------------------- properties

CALENDARS = [
    NATIONAL,
    LUNCH,
    RAMADAN,
    cal(slots=["22:00-02:00", "08:00-10:00"]),
    cal(timezone="Europe/London", working_days=["mon", "tue", "wed", "thu", "fri", "sun"]),
]
starts = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
durations = st.integers(min_value=0, max_value=400 * H)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CALENDARS), starts, durations)
def test_add_and_between_are_inverse(calendar, start: datetime, seconds: int) -> None:
    due = calendar.add_business_time(start, seconds)
    assert due >= start
    assert abs(calendar.business_time_between(start, due) - seconds) < 1e-3


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CALENDARS), starts, durations, durations)
def test_add_is_monotonic(calendar, start: datetime, d1: int, d2: int) -> None:
    d1, d2 = sorted((d1, d2))
    assert calendar.add_business_time(start, d1) <= calendar.add_business_time(start, d2)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CALENDARS), starts, st.integers(0, 40 * 24 * H), st.integers(0, 40 * 24 * H))
def test_between_is_additive_and_bounded_by_wall_time(
    calendar, a: datetime, x: int, y: int
) -> None:
    b = a + timedelta(seconds=x)
    c = b + timedelta(seconds=y)
    ab, bc = calendar.business_time_between(a, b), calendar.business_time_between(b, c)
    assert 0 <= ab <= x + 1e-6
    assert abs(ab + bc - calendar.business_time_between(a, c)) < 1e-3
