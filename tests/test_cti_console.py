"""The screen-pop in the real console, in headless Chromium, over live updates: amal signs
in, the PBX posts a call from the WhatsApp customer's number answered on her extension, and
within seconds her console shows the caller, the customer's open ticket and the buttons;
"Open a ticket" opens a phone ticket through intake and the call book records it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from omnidesk.model import Channel, RawPayload
from tests.test_agents_api import whatsapp_body
from tests.test_agents_console import browser  # noqa: F401 (fixture; skips without Chromium)
from tests.test_cti import DAY, centre, ev, post  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


async def test_the_answering_agent_sees_the_screen_pop_and_opens_a_ticket(
    centre: dict[str, Any],
    browser: Any,
) -> None:
    c, runtime = centre, centre["runtime"]
    question = {"id": "wamid.9", "type": "text", "text": {"body": "استفسار عن علامة تجارية"}}
    raw = RawPayload(channel=Channel.WHATSAPP, account="wa", payload=whatsapp_body(question),
                     received_at=DAY)  # fmt: skip
    (earlier,) = runtime.process([raw]).results
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))

    def sign_in() -> None:
        browser.get(str(c["session"]._base_url) + "console")
        browser.find_element(By.ID, "token").send_keys(c["tokens"]["amal"])
        browser.find_element(By.ID, "login-button").click()
        wait.until(lambda d: "up" in d.find_element(By.ID, "live-state").get_attribute("class"))

    await asyncio.to_thread(sign_in)
    await post(c, ev(1, "new", "b1", DAY.replace(hour=9), caller="0501234567"))
    await post(c, ev(2, "answered", "b1", DAY.replace(hour=9, second=9), extension="2001"))

    def screen_pop() -> str:
        wait.until(lambda d: earlier.ticket_id in d.find_element(By.ID, "call-pop").text)
        return browser.find_element(By.ID, "call-pop").text

    shown = await asyncio.to_thread(screen_pop)
    # in Arabic, the console's default: "incoming call", the number, the ticket's channel
    assert "مكالمة واردة" in shown and "+966501234567" in shown and "واتساب" in shown

    def open_ticket() -> str:
        buttons = browser.find_elements(By.CSS_SELECTOR, "#call-pop .call-actions button")
        buttons[0].click()  # open a ticket
        wait.until(lambda d: "OD-" in d.find_element(By.ID, "call-pop").text
                   and earlier.ticket_id not in d.find_element(By.ID, "call-pop").text)  # fmt: skip
        return browser.find_element(By.ID, "call-pop").text

    done = await asyncio.to_thread(open_ticket)
    with c["records"].connection() as conn:
        row = conn.execute("SELECT disposition, ticket_id FROM calls").fetchone()
    assert row[0] == "ticket" and row[1] in done
    assert c["service"].store.get_tickets([row[1]])[0].channel == Channel.PHONE
