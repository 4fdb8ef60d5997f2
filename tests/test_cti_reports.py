"""The calls in the main report and the dashboard: a day of calls posted by the PBX shows
up in the report's Calls section (HTML in Arabic and English, the table, CSV, and GET
/v1/reports, under a supervisor's scope and the report's filters), an empty day reads "no
calls" and never 0 %, the scheduled mail carries them, and the dashboard's today block
counts today's calls; a PBX whose secret is not in the environment is refused with 401
and one log line."""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from omnidesk.agents.supervise import supervisor_authorize
from omnidesk.configload import load_config
from omnidesk.reports import dashtext
from omnidesk.reports.dashboard import Dashboard
from omnidesk.reports.fold import Context
from omnidesk.reports.html import as_html
from omnidesk.reports.http import route_hook as report_routes
from omnidesk.reports.render import as_csv, as_table
from omnidesk.reports.schedule import ReportScheduler
from omnidesk.reports.source import figures_for
from omnidesk.viewers import env_authorize
from tests.services import within_one_riyadh_day
from tests.test_cti import DAY, RIYADH, centre, ev, post  # noqa: F401  (centre: the fixture)
from tests.test_report_schedule import report, smtp  # noqa: F401  (smtp: the fixture)

ROOT = Path(__file__).resolve().parent.parent


async def a_day(c: dict[str, Any], day: datetime) -> None:
    """Three calls to the Riyadh PBX on `day`: two answered (5 min and 2 min talk), one
    missed in the centre's hours (08:00-16:00): no callback ticket, but awaiting a call."""
    calls = (("d1", 9, 300), ("d2", 10, 120))
    n = 0
    for call, hour, talk in calls:
        for kind, extra in (("new", {"caller": f"+96650000000{hour}"}),
                            ("answered", {"agent": "amal"}),
                            ("hangup", {"duration_s": talk})):  # fmt: skip
            n += 1
            r = await post(c, ev(n + 100, kind, call, day.replace(hour=hour, minute=n), **extra))
            assert r.status == 201, await r.text()
    await post(c, ev(200, "new", "d3", day.replace(hour=11), caller="+966500000077"))
    r = await post(c, ev(201, "hangup", "d3", day.replace(hour=11, second=40)))
    assert (await r.json())["state"] == "missed"


async def test_a_day_of_calls_in_the_report_in_arabic_and_english(
    centre: dict[str, Any],
) -> None:
    c = centre
    await a_day(c, DAY)
    config = c["service"].config()
    ctx = Context.from_config(config)
    result = figures_for(c["records"].connection, config, ctx, DAY.date(), DAY.date(), {})
    calls = result["calls"]
    (riyadh,) = calls["branches"]
    assert (riyadh["branch"], riyadh["calls"], riyadh["answered"], riyadh["missed"]) == (
        "riyadh", 3, 2, 1)  # fmt: skip
    assert riyadh["average_handle_s"] == 210.0 and riyadh["awaiting_callback"] == 1

    english = as_html(result, "en")
    section = english[english.index('<h2 id="calls">') :]
    assert '<h2 id="calls">Calls</h2>' in english and "Average handle time" in section
    assert '<bdi dir="auto">riyadh</bdi>' in section and "66.7%" in section
    assert "3 min 30 sec" in section and "All calls" in section
    arabic = as_html(result, "ar", digits="arab")
    assert '<html lang="ar" dir="rtl">' in arabic
    section = arabic[arabic.index('<h2 id="calls">') :]
    assert "المكالمات" in section and "نسبة الرد" in section and "متوسط مدة المكالمة" in section
    assert "٣ د ٣٠ ث" in section and "٦٦٫٧٪" in section and "كل المكالمات" in section
    assert "Calls" not in section[: section.index("</table>")]
    table = as_table(result, "en")
    assert "Calls" in table and "3 min 30 sec" in table
    rows = [r for r in csv.DictReader(io.StringIO(as_csv(result))) if r["slice"] == "calls"]
    assert [(r["value"], r["calls"], r["calls_answer_rate"]) for r in rows] == [
        ("riyadh", "3", "0.6667"), ("", "3", "0.6667")]  # fmt: skip

    # an empty day: "no calls", never a 0 % rate; a non-phone channel has no calls
    empty = figures_for(c["records"].connection, config, ctx, DAY.date() + timedelta(days=1),
                        DAY.date() + timedelta(days=1), {})  # fmt: skip
    for lang, words in (("en", "no calls"), ("ar", "لا توجد مكالمات")):
        page = as_html(empty, lang)
        section = page[page.index('<h2 id="calls">') :].split("<h2>")[0]
        assert words in section and "%" not in section and "٪" not in section
    email = figures_for(c["records"].connection, config, ctx, DAY.date(), DAY.date(),
                        {"channel": "email"})  # fmt: skip
    assert email["calls"]["total"]["calls"] == 0


async def test_get_reports_carries_the_calls_of_the_supervisors_scope(
    centre: dict[str, Any],
) -> None:
    c = centre
    await a_day(c, DAY)
    service, runtime = c["service"], c["runtime"]
    dashboard = Dashboard(runtime.store, service.config(),
                          authorize=supervisor_authorize(service, env_authorize))  # fmt: skip
    app = web.Application()
    report_routes(dashboard, c["records"].connection)(app)
    server = TestServer(app)
    await server.start_server()
    day = {"from": DAY.date().isoformat(), "to": DAY.date().isoformat()}
    boss = {"Authorization": f"Bearer {c['tokens']['boss']}"}  # general and callbacks
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
        r = await session.get("/v1/reports", params=day, headers=boss)
        assert r.status == 200, await r.text()
        body = await r.json()
        assert body["calls"]["total"]["calls"] == 3  # callbacks is in riyadh: its calls
        assert body["calls"]["total"]["answer_rate"] == 0.6667
        r = await session.get("/v1/reports", params={**day, "format": "html", "lang": "ar"},
                              headers=boss)  # fmt: skip
        page = await r.text()
        assert r.status == 200 and "3 د 30 ث" in page and "المكالمات" in page
        r = await session.get("/v1/reports", params={**day, "queue": "general"}, headers=boss)
        assert (await r.json())["calls"]["total"]["calls"] == 0  # general is no call branch
    await server.close()


@within_one_riyadh_day
async def test_the_dashboards_today_block_counts_todays_calls(
    centre: dict[str, Any],
) -> None:
    c = centre
    service, runtime = c["service"], c["runtime"]
    boss = supervisor_authorize(service, env_authorize)(c["tokens"]["boss"])
    dashboard = Dashboard(runtime.store, service.config(), sla=runtime.clocks,
                          records=c["records"].connection)  # fmt: skip
    snap = dashboard.snapshot(boss, dashtext.lang_translator("en"))
    assert snap["today"]["phone"] is True and snap["today"]["calls_text"] == "no calls"
    assert snap["today"]["answer_rate_text"] == "no data"  # not 0 %
    now = datetime.now(RIYADH)
    await post(c, ev(1, "new", "t1", now, caller="+966500000001"))
    await post(c, ev(2, "answered", "t1", now, agent="amal"))
    await post(c, ev(3, "new", "t2", now, caller="+966500000002"))
    await post(c, ev(4, "missed", "t2", now))
    dashboard.reload(service.config(), dashboard.ctx)  # past the today block's cache
    snap = dashboard.snapshot(boss, dashtext.lang_translator("ar"))
    today = snap["today"]
    assert (today["calls"], today["answer_rate"], today["awaiting_callback"]) == (2, 0.5, 1)
    assert today["calls_text"] == "٢" and today["answer_rate_text"] == "٥٠٫٠٪"
    assert today["awaiting_callback_text"] == "١"
    assert snap["labels"]["awaiting_callback"] == "فائتة تنتظر معاودة الاتصال"


async def test_the_reference_config_refuses_a_pbx_without_its_secret(
    centre: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The reference config names its PBX secrets by variable; the daemon starts without
    them (`omnidesk demo` does), and such a PBX is refused at request time."""
    reference = load_config(ROOT / "queue_config.yaml").data
    assert reference.cti is not None and "cc937-pbx" in reference.cti.pbx
    assert {a.id: a.extension for a in reference.agents}["huda"] == "2101"
    monkeypatch.delenv("OMNIDESK_TEST_PBX_SECRET")  # the centre's PBX, now with no secret
    with caplog.at_level(logging.WARNING, logger="omnidesk.agents.cti"):
        r = await post(centre, ev(1, "new", "s1", DAY, caller="+966500000001"))
    assert r.status == 401 and "no secret set" in (await r.json())["error"]
    (line,) = [m.getMessage() for m in caplog.records if m.name == "omnidesk.agents.cti"]
    assert "OMNIDESK_TEST_PBX_SECRET" in line and "riyadh-pbx" in line
    monkeypatch.setenv("OMNIDESK_TEST_PBX_SECRET", "pbx-secret-for-tests-only")
    r = await post(centre, ev(2, "new", "s2", DAY, caller="+966500000001"))
    assert r.status == 201  # the daemon ran on: the same PBX is taken once its secret is set


def test_a_pbx_branch_no_queue_or_region_names_is_a_warning(tmp_path: Path) -> None:
    """The reference config's branches are queues; a typo would hide its calls from every
    filtered report, so `omnidesk check` says so."""
    assert load_config(ROOT / "queue_config.yaml").warnings == []
    text = (ROOT / "queue_config.yaml").read_text("utf-8")
    broken = tmp_path / "queue_config.yaml"
    broken.write_text(text.replace("branch: cc-consumers", "branch: cc-consumer", 1), "utf-8")
    warnings = load_config(broken).warnings  # the rule tests' sample files are not copied
    (warning,) = [w for w in warnings if "cti.pbx" in w]
    assert "cc937-pbx" in warning and "'cc-consumer' is neither a queue nor a region" in warning


async def test_a_scheduled_report_mails_the_days_calls(
    centre: dict[str, Any],
    smtp: tuple[Any, int],
) -> None:
    c = centre
    await a_day(c, DAY)
    inbox, port = smtp
    config = c["service"].config()
    service = config.service.model_validate(
        {**config.service.model_dump(),
         "smtp": {"host": "127.0.0.1", "port": port, "from_address": "od@moc.sa"}})  # fmt: skip
    daily = report(name="daily-ar", lang="ar", recipients=["boss@moc.example.sa"])
    cfg = config.model_copy(update={"service": service, "reports": [daily]})
    morning = DAY.replace(hour=9) + timedelta(days=1)  # the daily report covers DAY
    sched = ReportScheduler(c["runtime"].store, cfg, records=c["records"], clock=lambda: morning)
    assert len(await sched.tick()) == 1
    (mail,) = inbox.messages
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "المكالمات" in body and "3 د 30 ث" in body and "66.7" in body
    page = next(mail.iter_attachments()).get_content()
    assert '<h2 id="calls">المكالمات</h2>' in page and "كل المكالمات" in page
