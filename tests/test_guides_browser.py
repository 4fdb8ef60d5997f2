"""The guides in headless Chromium: /guides renders right to left, Arabic first (its
screenshot, with OMNIDESK_SCREENSHOTS=1, is docs/screenshots/guides-ar.png); the web form's
script lists matching guides as the customer types; the console suggests guides for the
open ticket and puts a guide's link into the reply."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.agentkit import make
from tests.guidekit import PUBLIC_URL, guide_app, reference, with_guides
from tests.storekit import web as web_form
from tests.test_agents_console import browser  # noqa: F401 (fixture)
from tests.test_daemon import ROOT

pytestmark = pytest.mark.slow

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

FORM_PAGE = """<!doctype html><html lang="ar" dir="rtl"><head><meta charset="utf-8">
<title>نموذج التواصل</title></head><body><label for="message">سؤالك</label>
<textarea id="message"></textarea>
<script src="/static/guide-suggest.js" data-field="message"></script></body></html>"""


async def form_page(request: web.Request) -> web.Response:
    return web.Response(text=FORM_PAGE, content_type="text/html")


@pytest.fixture
def served() -> Iterator[Any]:
    """Start an app (given later) on a free port in a thread of its own: Selenium's calls
    block, so the server cannot share the test's event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    def serve(app: web.Application) -> str:
        async def start() -> int:
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            return int(runner.addresses[0][1])

        port = asyncio.run_coroutine_threadsafe(start(), loop).result(20)
        return f"http://127.0.0.1:{port}"

    yield serve
    for runner in runners:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(20)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_the_guides_page_renders_right_to_left(browser: Any, served: Any, tmp_path: Path) -> None:
    app = guide_app(reference())
    app.router.add_get("/form", form_page)
    base = served(app)
    browser.set_window_size(1280, 900)
    browser.get(f"{base}/guides")
    body = browser.find_element(By.TAG_NAME, "body")
    assert browser.execute_script("return getComputedStyle(document.body).direction") == "rtl"
    sections = browser.find_elements(By.CSS_SELECTOR, "main section")
    assert [s.get_attribute("lang") for s in sections] == ["ar", "en"]
    assert sections[0].location["y"] < sections[1].location["y"]  # Arabic first
    link = sections[0].find_element(By.CSS_SELECTOR, "li a")
    # right to left: an Arabic title starts at the right edge of its list
    ul = sections[0].find_element(By.CSS_SELECTOR, "ul")
    right_gap = ul.location["x"] + ul.size["width"] - (link.location["x"] + link.size["width"])
    assert right_gap < 40 and link.location["x"] > ul.location["x"] + 40
    assert "الأدلة التوعوية" in body.text
    shot = tmp_path / "guides-ar.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
    if os.environ.get("OMNIDESK_SCREENSHOTS"):
        out = ROOT / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(out / "guides-ar.png"))

    # one guide, and the web form's suggestions as the customer types
    browser.get(f"{base}/guides/warranty-ar")
    assert browser.find_element(By.TAG_NAME, "h1").text == "ضمان المنتجات والأجهزة"
    browser.get(f"{base}/form")
    browser.find_element(By.ID, "message").send_keys("الجهاز خرب وهو في الضمان والمحل رافض يصلحه")
    wait = WebDriverWait(browser, 10)
    wait.until(lambda d: d.find_element(By.ID, "guide-suggestions").is_displayed())
    first = browser.find_element(By.CSS_SELECTOR, "#guide-suggestions li a")
    assert first.text == "ضمان المنتجات والأجهزة"
    assert first.get_attribute("href").endswith("/guides/warranty-ar")


def test_the_console_suggests_guides_and_inserts_a_link(
    browser: Any, served: Any, prefix: str, tmp_path: Path
) -> None:
    runtime, service, _ = make(prefix, tmp_path)
    token = service.tokens.create("amal")
    base = served(guide_app(with_guides(runtime.config), service))
    text = "ابغى احجز اسم تجاري لمحلي الجديد، كيف الطريقة؟"
    runtime.process([web_form(text, email="c@example.sa")])
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(f"{base}/console")
    browser.execute_script("localStorage.setItem('omnidesk-lang', 'ar')")
    browser.get(f"{base}/console")
    wait.until(lambda d: d.find_element(By.ID, "login-button").text)
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "login-button").click()
    wait.until(lambda d: d.find_element(By.ID, "app").is_displayed())
    assert browser.find_element(By.ID, "guides-h").text == "الأدلة"
    browser.find_element(By.ID, "next").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#guide-suggestions li[data-slug]"))
    slugs = [
        li.get_attribute("data-slug")
        for li in browser.find_elements(By.CSS_SELECTOR, "#guide-suggestions li[data-slug]")
    ]
    assert slugs[0] == "trade-name-ar" and len(slugs) == 3
    button = browser.find_element(By.CSS_SELECTOR, "#guide-suggestions li .guide-link")
    assert button.text == "إدراج الرابط"
    button.click()
    reply = browser.find_element(By.ID, "reply-text").get_attribute("value")
    assert reply.endswith(f"{PUBLIC_URL}/guides/trade-name-ar") and "حجز اسم تجاري" in reply

    # the search box: plurals meet their guide; an excerpt goes in too
    browser.find_element(By.ID, "guide-search").send_keys("الضمانات")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#guide-results li[data-slug]"))
    found = browser.find_element(By.CSS_SELECTOR, "#guide-results li[data-slug]")
    assert found.get_attribute("data-slug") == "warranty-ar"
    found.find_element(By.CSS_SELECTOR, ".guide-excerpt").click()
    reply = browser.find_element(By.ID, "reply-text").get_attribute("value")
    assert "سنتين على الأقل" in reply and reply.endswith("/guides/warranty-ar")
