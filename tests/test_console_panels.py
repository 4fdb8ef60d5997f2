"""The console's panels and live updates that the day-in-the-console tests leave out, in
headless Chromium against `omnidesk run` (real Redis and PostgreSQL): a customer's follow-up,
an SLA warning and a breach on the open ticket show within 2 s without a reload; the list's
filters (queue, status, priority, channel, tag) and sort; the SLA countdown badge's words
and colour in Arabic and English; the Telegram and WhatsApp limits by the reply box; the
routing panel's rule; the customer panel's CSAT answers and archived ticket (evicted from
Redis); the language toggle; the "r" shortcut's visible focus; and column headers that
never break inside a word."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from omnidesk.db.evict import Eviction
from omnidesk.db.records import Records
from tests.agentkit import AGENTS_CONFIG, working_country
from tests.services import wait_for
from tests.test_agents_console import browser, cli, daemon  # noqa: F401 (fixtures)
from tests.test_console_desk import api, choose, click, drop_mail, press, sign_in
from tests.test_daemon import DaemonProc, started_daemon

pytestmark = pytest.mark.slow

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

# a 24/7 calendar and a 20 s first response (a warning at half of it), for one rule: SLA
# events that come in seconds, while the other tickets keep the fixture's standard policy
FAST = """\
calendars:
  always:
    working_days: [sun, mon, tue, wed, thu, fri, sat]
    slots: ["00:00-24:00"]
    holidays: {{country: {country}}}
"""


FAST_POLICY = """\
  fast:
    calendar: always
    first_response: 20s
    ladder:
      - {at: 0.5, actions: [{tag: sla-warned}]}
      - {at: 1.0, actions: [{tag: sla-late}]}
"""
FAST_RULE = """\
  - id: fast-lane
    when:
      keywords: [fastlane]
    then: {queue: general, sla_policy: fast}
"""


@pytest.fixture
def fast_daemon(
    prefix: str, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DaemonProc]:
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    text = AGENTS_CONFIG.read_text("utf-8")
    fast = FAST.format(country=working_country())
    text = text.replace("sla_policies:\n", fast + "sla_policies:\n", 1)
    text = text.replace("queues:\n", FAST_POLICY + "queues:\n", 1)
    text = text.replace("rules:\n", "rules:\n" + FAST_RULE, 1)
    with started_daemon(tmp_path, prefix, text) as proc:
        yield proc


def drop_json(proc: DaemonProc, name: str, channel: str, payload: dict[str, Any]) -> None:
    """A channel's payload through the drop folder (`<name>.<channel>.json`), as its
    connector would hand it over."""
    tmp = proc.drop / "new" / f".{name}.tmp"
    tmp.write_text(json.dumps(payload, ensure_ascii=False), "utf-8")
    tmp.rename(proc.drop / "new" / f"{name}.{channel}.json")


def drop_telegram(proc: DaemonProc, name: str, chat: int, text: str, message_id: int) -> None:
    """A Telegram update from chat `chat`: one chat is one ticket, so a second message from
    the same chat is a follow-up of the first."""
    sender = {"id": chat, "is_bot": False, "first_name": name}
    drop_json(proc, name, "telegram", {
        "update_id": time.time_ns() % 10**9,
        "message": {"message_id": message_id, "from": sender,
                    "chat": {"id": chat, "type": "private", "first_name": name},
                    "date": int(time.time()), "text": text}})  # fmt: skip


def drop_whatsapp(proc: DaemonProc, name: str, phone: str, text: str, at: datetime) -> None:
    """A WhatsApp webhook body with one text message sent at `at` (its 24 h window's start)."""
    message = {"from": phone, "id": f"wamid.{name}{time.time_ns()}", "type": "text",
               "timestamp": str(int(at.timestamp())), "text": {"body": text}}  # fmt: skip
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "966110001900", "phone_number_id": "10654"},
             "contacts": [{"profile": {"name": name}, "wa_id": phone}],
             "messages": [message]}  # fmt: skip
    drop_json(proc, name, "whatsapp", {"object": "whatsapp_business_account", "entry": [
        {"id": "1022901", "changes": [{"field": "messages", "value": value}]}]})  # fmt: skip


def listed(driver: Any, list_id: str = "recent") -> list[str]:
    """The ticket ids a list shows, in order."""
    return list(driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((n) => n.dataset.ticket)",
        f"#{list_id} li[data-ticket]"))  # fmt: skip


def open_from_list(driver: Any, wait: Any, ticket_id: str) -> None:
    """Open a ticket from the list, clicking again while a live re-render swallows it."""
    row = f"#recent li[data-ticket='{ticket_id}'], #mine li[data-ticket='{ticket_id}']"

    def opened(d: Any) -> bool:
        if ticket_id in d.find_element(By.ID, "t-title").text:
            return True
        click(d, row)
        return False

    wait.until(opened)


def shown_within(driver: Any, check: Any, seconds: float) -> float:
    """Poll `check(driver)` every 50 ms for `seconds`; how long it took (fails if never)."""
    began = time.monotonic()
    assert wait_for(lambda: check(driver), timeout=seconds, every=0.05), driver.find_element(
        By.ID, "app").text  # fmt: skip
    return time.monotonic() - began


def duration_words(seconds: float, lang: str) -> str:
    """The badge's business time as console.js words it: "3 h 10 min" / "٣ س ١٠ د"."""
    s = int(abs(seconds))
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if lang == "en":
        text = f"{d} d {h} h" if d else f"{h} h {m} min" if h else f"{m} min"
        return text
    text = f"{d} ي {h} س" if d else f"{h} س {m} د" if h else f"{m} د"
    return text.translate(ARABIC_DIGITS)


def badge(driver: Any, ticket_id: str) -> tuple[str, str]:
    """The list's SLA badge of a ticket: (its text, its sla-* colour class)."""
    found = driver.execute_script(
        "const b = document.querySelector(`#recent li[data-ticket='${arguments[0]}'] .sla`);"
        " return b ? [b.textContent, [...b.classList].filter((c) => c !== 'sla')] : null",
        ticket_id)  # fmt: skip
    if not found:
        return "", ""
    text, classes = found
    return text, " ".join(classes)


def event_time(proc: DaemonProc, token: str, ticket_id: str, kind: str) -> float | None:
    """When the ticket's `kind` event was written (epoch seconds), from its history: the
    id of an events stream entry is its time in milliseconds."""
    view = api(proc, "GET", f"/v1/tickets/{ticket_id}", token)
    for e in view.get("history") or []:
        if e["type"] == kind:
            return int(e["id"].split("-")[0]) / 1000
    return None


def test_a_follow_up_an_sla_warning_and_a_breach_show_without_a_reload(
    fast_daemon: DaemonProc,
    browser: Any,
) -> None:
    proc = fast_daemon
    amal = cli(proc.config, "agents", "token", "amal")
    drop_telegram(proc, "Reem", 5566778, "عندي مشكلة في التطبيق", 41)
    store = proc.store()
    assert wait_for(lambda: store.ticket_count() == 1), proc.logs()
    (ticket,) = store.list_tickets()
    wait = sign_in(browser, proc, amal, lang="en")
    open_from_list(browser, wait, ticket.id)
    browser.execute_script("window.__same_page = true")

    # the customer writes again in the same chat: the open ticket shows it, no reload
    drop_telegram(proc, "Reem", 5566778, "ما زال التطبيق يرفض رقم الجوال", 42)
    assert wait_for(lambda: len(store.ticket_messages(ticket.id)) == 2, timeout=10), proc.logs()
    assert store.ticket_count() == 1  # a follow-up, not a new ticket

    def follow_up(d: Any) -> bool:
        texts = [n.text for n in d.find_elements(By.CSS_SELECTOR, "#thread .msg.in .text")]
        return any("رقم الجوال" in t for t in texts)

    assert shown_within(browser, follow_up, 2.0) < 2.0
    assert len(browser.find_elements(By.CSS_SELECTOR, "#thread .msg.in")) == 2

    # a ticket on the 20 s policy: its warning (at 10 s) and breach (at 20 s) come live
    drop_telegram(proc, "Fahd", 7788990, "fastlane: طلب عاجل", 7)
    assert wait_for(lambda: store.ticket_count() == 2), proc.logs()
    fast = next(t for t in store.list_tickets() if t.id != ticket.id)
    open_from_list(browser, wait, fast.id)
    wait.until(lambda d: badge(d, fast.id)[1] == "sla-warn")  # under an hour left
    assert re.fullmatch(r"\d+ min", badge(browser, fast.id)[0]), badge(browser, fast.id)
    warned = f"#live-feed li.alert[data-type='sla_warned'][data-ticket='{fast.id}']"
    late = f"#live-feed li.alert[data-type='sla_breached'][data-ticket='{fast.id}']"
    assert browser.find_elements(By.CSS_SELECTOR, warned) == []
    for selector, kind, tag in ((warned, "sla_warned", "sla-warned"),
                                (late, "sla_breached", "sla-late")):  # fmt: skip

        def in_feed(selector: str = selector) -> bool:
            return bool(browser.find_elements(By.CSS_SELECTOR, selector))

        wait_for(in_feed, timeout=40, every=0.05)
        seen = time.time()
        assert in_feed(), browser.find_element(By.ID, "live-feed").text
        at = event_time(proc, amal, fast.id, kind)
        assert at is not None, kind
        assert seen - at < 2.0, (kind, seen - at)
        assert fast.id in browser.find_element(By.CSS_SELECTOR, selector).text

        def tagged(d: Any, tag: str = tag) -> bool:  # the ladder's tag, on the open ticket
            return tag in d.find_element(By.ID, "tags").text

        wait.until(tagged)
    wait.until(lambda d: badge(d, fast.id)[1] == "sla-breached")
    assert re.fullmatch(r"\d+ min overdue", badge(browser, fast.id)[0]), badge(browser, fast.id)
    assert browser.execute_script("return window.__same_page") is True  # no reload
    assert proc.stop() == 0


def test_the_lists_filters_and_sort(daemon: DaemonProc, browser: Any) -> None:
    sara = cli(daemon.config, "agents", "token", "sara")  # queues general and quiet
    store = daemon.store()
    daemon.drop_web("webby", "سؤال عن الرسوم")
    assert wait_for(lambda: store.ticket_count() == 1), daemon.logs()
    drop_telegram(daemon, "Reem", 5566778, "مشكلة في التطبيق", 41)
    assert wait_for(lambda: store.ticket_count() == 2), daemon.logs()
    drop_mail(daemon, "huda", "أم خالد", "فاتورة الكهرباء", "الفاتورة مكررة")
    assert wait_for(lambda: store.ticket_count() == 3), daemon.logs()
    daemon.drop_web("hush", "please handle this quietly")
    assert wait_for(lambda: store.ticket_count() == 4), daemon.logs()
    by_channel = {t.channel.value: t.id for t in store.list_tickets() if t.queue == "general"}
    web, telegram, email = by_channel["web"], by_channel["telegram"], by_channel["email"]
    (quiet,) = [t.id for t in store.list_tickets() if t.queue == "quiet"]
    api(daemon, "POST", f"/v1/tickets/{telegram}/priority", sara, {"priority": "urgent"})
    api(daemon, "POST", f"/v1/tickets/{email}/tags", sara, {"add": ["فوترة"]})
    api(daemon, "POST", f"/v1/tickets/{web}/pending", sara, {"reason": "بانتظار الهوية"})
    every = {web, telegram, email, quiet}

    def written() -> bool:  # the list is read from PostgreSQL: wait for the records writer
        got = {t["id"]: t for t in api(daemon, "GET", "/v1/tickets", sara)["tickets"]}
        return (set(got) == every and got[telegram]["priority"] == "urgent"
                and got[email]["tags"] == ["فوترة"]
                and got[web]["status"] == "pending_customer")  # fmt: skip

    assert wait_for(written, timeout=15)
    wait = sign_in(browser, daemon, sara, lang="en")
    wait.until(lambda d: set(listed(d)) == every)

    for select, value, expected in (
        ("f-queue", "quiet", {quiet}),
        ("f-queue", "general", {web, telegram, email}),
        ("f-queue", "", every),
        ("f-status", "pending_customer", {web}),
        ("f-status", "new", every - {web}),
        ("f-status", "", every),
        ("f-priority", "urgent", {telegram}),
        ("f-priority", "normal", every - {telegram}),
        ("f-priority", "", every),
        ("f-channel", "telegram", {telegram}),
        ("f-channel", "email", {email}),
        ("f-channel", "", every),
    ):
        choose(browser, select, value)

        def narrowed(d: Any, want: set[str] = expected) -> bool:
            return set(listed(d)) == want

        wait.until(narrowed)
    # the tag filter: typed, then applied on change (Enter in the field)
    tag = browser.find_element(By.ID, "f-tag")
    tag.send_keys("فوترة", Keys.TAB)
    wait.until(lambda d: listed(d) == [email])
    tag.clear()
    tag.send_keys(Keys.TAB)
    wait.until(lambda d: set(listed(d)) == every)

    # sort: priority puts the urgent one first; newest first is the order they came in,
    # reversed; by SLA the paused one (its clock stopped) goes last
    choose(browser, "f-sort", "priority")
    wait.until(lambda d: listed(d)[:1] == [telegram])
    choose(browser, "f-sort", "newest")
    wait.until(lambda d: listed(d) == [quiet, email, telegram, web])
    choose(browser, "f-sort", "sla")
    wait.until(lambda d: listed(d)[-1:] == [web])
    assert daemon.stop() == 0


def test_sla_badges_headers_language_toggle_and_the_reply_shortcut(
    daemon: DaemonProc,
    browser: Any,
) -> None:
    amal = cli(daemon.config, "agents", "token", "amal")
    store = daemon.store()
    daemon.drop_web("webby", "سؤال عن الرسوم")
    assert wait_for(lambda: store.ticket_count() == 1), daemon.logs()
    daemon.drop_web("other", "سؤال عن الاشتراك")
    assert wait_for(lambda: store.ticket_count() == 2), daemon.logs()
    running, paused = (t.id for t in store.list_tickets())
    api(daemon, "POST", f"/v1/tickets/{paused}/pending", amal, {"reason": "بانتظار الهوية"})

    def clocks() -> dict[str, Any]:
        return {t["id"]: t["sla"] for t in api(daemon, "GET", "/v1/tickets", amal)["tickets"]}

    assert wait_for(lambda: clocks().get(paused, {}).get("state") == "paused", timeout=15)
    wait = sign_in(browser, daemon, amal, lang="ar")
    assert browser.execute_script("return document.documentElement.dir") == "rtl"
    assert browser.find_element(By.ID, "next").text == "استلام التالية (t)"

    for lang in ("ar", "en"):
        wait.until(lambda d: badge(d, running)[0] and badge(d, paused)[0])
        sla = clocks()
        for tid, colour in ((running, "sla-ok"), (paused, "sla-paused")):
            text, classes = badge(browser, tid)
            left = sla[tid]["remaining_seconds"]
            assert sla[tid]["state"] == ("paused" if tid == paused else "running")
            assert left > 3600 and classes == colour, (tid, text, classes, sla[tid])
            # the server's business time as the page words it: the page's figure may be a
            # minute older (fetched before `clocks()`) or newer (a redraw after it)
            words = {duration_words(left + d, lang) for d in (60, 0, -60)}
            if tid == paused:
                template = "متوقفة، متبقٍ {}" if lang == "ar" else "paused, {} left"
                words = {template.format(w) for w in words}
            assert text in words, (text, words)
        if lang == "ar":
            assert re.search(r"[٠-٩]+ س [٠-٩]+ د", badge(browser, running)[0])
            # the language toggle: Arabic, right to left -> English, left to right
            click(browser, "header .lang-toggle")
            wait.until(lambda d: d.execute_script("return document.documentElement.dir") == "ltr")
            assert browser.execute_script("return document.documentElement.lang") == "en"
            wait.until(lambda d: d.find_element(By.ID, "next").text == "Take next (t)")
            assert browser.find_element(By.ID, "queues-h").text == "My queues"
            assert browser.find_element(By.CSS_SELECTOR, "header .lang-toggle").text == "العربية"
        else:
            assert re.fullmatch(r"\d+ h \d+ min", badge(browser, running)[0])

    # "r": the reply box takes the focus, and the focus is visible
    open_from_list(browser, wait, running)
    browser.find_element(By.ID, "t-title").click()
    press(browser, "r")
    wait.until(lambda d: d.switch_to.active_element.get_attribute("id") == "reply-text")
    ring = browser.execute_script(
        "const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth, s.boxShadow]")  # fmt: skip
    assert (ring[0] != "none" and ring[1] != "0px") or ring[2] != "none", ring

    # the queue table's column headers never break inside a word, on a desktop and a phone,
    # in Arabic and English, and nothing scrolls sideways
    for lang in ("ar", "en"):
        if browser.execute_script("return document.documentElement.lang") != lang:
            click(browser, "header .lang-toggle")

            def switched(d: Any, want: str = lang) -> bool:
                return bool(d.execute_script("return document.documentElement.lang") == want)

            wait.until(switched)
        for width, height in ((1280, 720), (390, 844)):
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1,
                "mobile": width < 700})  # fmt: skip
            wait.until(lambda d: d.execute_script(
                "const e = document.documentElement;"
                " return e.scrollWidth <= e.clientWidth"))  # fmt: skip
            broken = browser.execute_script(BROKEN_WORDS, "#queues th")
            assert broken == [], (lang, width, broken)
            # and the table still fits its column
            assert browser.execute_script(
                "const t = document.getElementById('queues');"
                " return t.offsetWidth <= t.parentElement.clientWidth"), (lang, width)  # fmt: skip
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert daemon.stop() == 0


# the words of the matched elements that the layout split over two lines
BROKEN_WORDS = """
const out = [];
for (const cell of document.querySelectorAll(arguments[0])) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0)
        .map((r) => Math.round(r.top)));
      if (tops.size > 1) out.push(m[0]);
    }
  }
}
return out;
"""


def test_channel_limits_and_the_routing_panel(daemon: DaemonProc, browser: Any) -> None:
    omar = cli(daemon.config, "agents", "token", "omar")  # the complaints queue
    store = daemon.store()
    drop_telegram(daemon, "Reem", 5566778, "شكوى: التطبيق لا يقبل رقم الجوال", 41)
    assert wait_for(lambda: store.ticket_count() == 1), daemon.logs()
    now = datetime.now(UTC)
    drop_whatsapp(daemon, "umkhalid", "966552223344", "شكوى: المحل رفض الاسترجاع", now)
    assert wait_for(lambda: store.ticket_count() == 2), daemon.logs()
    drop_whatsapp(daemon, "old", "966553334455", "شكوى قديمة على متجر",
                  now - timedelta(hours=30))  # fmt: skip
    assert wait_for(lambda: store.ticket_count() == 3), daemon.logs()
    by_channel: dict[str, list[str]] = {}
    for t in sorted(store.list_tickets(), key=lambda t: t.id):
        assert t.queue == "complaints", t
        by_channel.setdefault(t.channel.value, []).append(t.id)
    (telegram,), whatsapp = by_channel["telegram"], by_channel["whatsapp"]
    fresh, stale = sorted(whatsapp, key=lambda tid: store.ticket_messages(tid)[0].created_at,
                          reverse=True)  # fmt: skip
    wait = sign_in(browser, daemon, omar, lang="en")

    open_from_list(browser, wait, telegram)
    wait.until(lambda d: d.find_element(By.ID, "limits").text == "Telegram: 0 of 4096 characters")
    box = browser.find_element(By.ID, "reply-text")
    box.send_keys("مرحبا")
    wait.until(lambda d: d.find_element(By.ID, "limits").text == "Telegram: 5 of 4096 characters")
    assert "risk" not in browser.find_element(By.ID, "limits").get_attribute("class")
    browser.execute_script(
        "const b = document.getElementById('reply-text'); b.value = 'x'.repeat(4096);"
        " b.dispatchEvent(new Event('input'))")  # fmt: skip
    box.send_keys("y")
    wait.until(lambda d: "4,097 of 4096" in d.find_element(By.ID, "limits").text)
    assert "risk" in browser.find_element(By.ID, "limits").get_attribute("class")
    # the routing panel names the rule that put the ticket in complaints
    routing = browser.find_element(By.ID, "routing").text
    assert "Matched rule complaints" in routing and "شكوى" in routing, routing
    box.clear()

    open_from_list(browser, wait, fresh)
    wait.until(lambda d: "24 h window closes in 23 h" in d.find_element(By.ID, "limits").text)
    assert "risk" not in browser.find_element(By.ID, "limits").get_attribute("class")
    assert "Matched rule complaints" in browser.find_element(By.ID, "routing").text
    open_from_list(browser, wait, stale)
    wait.until(lambda d: "window is closed" in d.find_element(By.ID, "limits").text)
    assert "risk" in browser.find_element(By.ID, "limits").get_attribute("class")

    # and in Arabic, with Arabic-Indic digits
    click(browser, "header .lang-toggle")
    open_from_list(browser, wait, telegram)
    wait.until(lambda d: d.find_element(By.ID, "limits").text == "تيليجرام: ٠ من ٤٠٩٦ حرفًا")
    assert "القاعدة المطابقة complaints" in browser.find_element(By.ID, "routing").text
    assert daemon.stop() == 0


def test_the_customer_panel_shows_csat_and_an_archived_ticket(
    daemon: DaemonProc,
    browser: Any,
    pg_url: str,
) -> None:
    amal = cli(daemon.config, "agents", "token", "amal")
    store = daemon.store()
    drop_mail(daemon, "huda", "أم خالد", "فاتورة الكهرباء", "الفاتورة مكررة")
    assert wait_for(lambda: store.ticket_count() == 1), daemon.logs()
    (old,) = store.list_tickets()
    api(daemon, "POST", f"/v1/tickets/{old.id}/reply", amal, {"text": "تم تصحيح الفاتورة"})
    api(daemon, "POST", f"/v1/tickets/{old.id}/resolve", amal)
    # the customer answers the survey the resolve sent, on the daemon's /csat page
    survey = store.key("ticket", old.id)
    assert wait_for(lambda: store.r.hget(survey, "csat_token"), timeout=10), daemon.logs()
    token = store.r.hget(survey, "csat_token")
    assert isinstance(token, str)
    form = urllib.parse.urlencode({"score": "4", "comment": "سريع ولطيف"}).encode()
    url = f"http://127.0.0.1:{daemon.port}/csat/{token}"
    with urllib.request.urlopen(urllib.request.Request(url, data=form), timeout=5) as r:
        assert r.status == 200

    # the resolved ticket leaves Redis once PostgreSQL holds all of it (the eviction pass,
    # with no reopen window)
    records = Records(pg_url)
    eviction = Eviction(store, records, reopen_window=timedelta(0), closed_after=timedelta(0))
    try:
        left: list[str] = []

        def evicted() -> bool:
            done = eviction.run()
            left.extend(done.evicted + done.gone)
            return old.id in left

        assert wait_for(evicted, timeout=20), daemon.logs()
    finally:
        records.close()
    assert store.get_ticket(old.id) is None

    drop_mail(daemon, "huda2", "أم خالد", "سؤال جديد", "وسؤال عن الاشتراك",
              sender="huda@example.sa")  # fmt: skip
    assert wait_for(lambda: len(store.list_tickets()) == 1), daemon.logs()
    (new,) = store.list_tickets()
    assert new.id != old.id
    wait = sign_in(browser, daemon, amal, lang="en")
    open_from_list(browser, wait, new.id)
    past = f"#customer .past li[data-ticket='{old.id}']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, past))
    assert "archived" in browser.find_element(By.CSS_SELECTOR, past).text
    here = f"#customer .past li[data-ticket='{new.id}']"
    assert "archived" not in browser.find_element(By.CSS_SELECTOR, here).text
    panel = browser.find_element(By.ID, "customer").text
    assert "Satisfaction (CSAT)" in panel and "no survey answers" not in panel, panel
    answers = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#customer li")
               if old.id in li.text and "/5" in li.text]  # fmt: skip
    assert len(answers) == 1 and "4/5" in answers[0] and "سريع ولطيف" in answers[0], panel
    # the archived ticket opens from there, read from PostgreSQL
    click(browser, past)
    wait.until(lambda d: old.id in d.find_element(By.ID, "t-title").text)
    wait.until(lambda d: "تم تصحيح الفاتورة" in d.find_element(By.ID, "thread").text)
    assert daemon.stop() == 0
