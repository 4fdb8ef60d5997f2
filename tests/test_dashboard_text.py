"""What the dashboard says, without a browser: business time left as a person reads it in
Arabic (Arabic-Indic digits) and English, the risk level behind its colour, "no data"
rather than 0 % when nothing was measured, and which events make a supervisor's page
refresh."""

from __future__ import annotations

import pytest

from omnidesk.reports import dashtext
from omnidesk.reports.dashboard import concerns

AR, EN = dashtext.lang_translator("ar"), dashtext.lang_translator("en")


@pytest.mark.parametrize(
    ("seconds", "ar", "en"),
    [
        (3 * 3600 + 10 * 60, "متبقٍ ٣ س ١٠ د", "3 h 10 min left"),
        (35 * 3600, "متبقٍ ٣٥ س", "35 h left"),  # 2100 min, the old page's raw figure
        (19 * 60 + 59, "متبقٍ ١٩ د", "19 min left"),
        (30, "متبقٍ أقل من دقيقة", "under a minute left"),
        (-25 * 60, "متجاوزة منذ ٢٥ د", "breached 25 min ago"),
        (-(26 * 3600 + 60), "متجاوزة منذ ٢٦ س ١ د", "breached 26 h 1 min ago"),
    ],
)
def test_time_left_reads_as_hours_and_minutes(seconds: int, ar: str, en: str) -> None:
    assert dashtext.time_left(AR, seconds) == ar
    assert dashtext.time_left(EN, seconds) == en


def test_levels_and_their_words() -> None:
    assert [dashtext.level(s) for s in (-1, 0, 3599, 3600)] == ["breached", "risk", "risk", "ok"]
    assert dashtext.texts(AR)["levels"] == {
        "breached": "المتجاوزة", "risk": "معرّضة للتجاوز", "ok": "ضمن الوقت"
    }  # fmt: skip
    assert dashtext.texts(EN)["levels"]["risk"] == "At risk"


def test_nothing_measured_is_no_data_not_zero() -> None:
    assert dashtext.share(EN, None) == "no data"
    assert dashtext.share(AR, None) == "لا توجد بيانات"
    assert dashtext.share(EN, 0.0) == "0.0%"  # measured, and all missed: a real zero
    assert dashtext.share(AR, 0.953) == "٩٥٫٣٪"


def test_nobody_online_is_not_a_fault() -> None:
    assert dashtext.agents_note(EN, 4, 0) == "No agent is online right now."
    assert dashtext.agents_note(AR, 0, 0) == "لا يوجد موظف مُعدّ لهذه الطوابير."
    assert dashtext.agents_note(EN, 4, 1) is None


def test_every_label_is_translated() -> None:
    ar, en = dashtext.texts(AR), dashtext.texts(EN)
    for group in ("labels", "errors", "levels", "presence"):
        same = [k for k in ar[group] if ar[group][k] == en[group][k]]
        assert not same, f"{group}: not translated to Arabic: {same}"


def test_which_events_refresh_a_supervisors_page() -> None:
    mine = ["general", "complaints"]
    assert concerns({"type": "ticket_opened", "queue": "complaints"}, mine)
    assert concerns({"type": "transferred", "queue": "cr", "from": "general"}, mine)
    assert concerns({"type": "presence", "actor": "amal"}, mine)  # no queue: agents list
    assert not concerns({"type": "ticket_opened", "queue": "cr"}, mine)
    assert not concerns({"type": "token_created", "agent": "amal"}, mine)
