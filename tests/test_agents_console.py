"""The agent console in headless Chromium (Selenium + Debian's chromium/chromedriver) against
`omnidesk run` in a subprocess: sign in with a token made by `omnidesk agents token`, take
the next ticket, read a thread whose customer text holds a <script> (shown as text), reply,
resolve, and see a new ticket appear without a reload. A screenshot goes to the tmp dir."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agentkit import AGENTS_CONFIG
from tests.services import chromium_env, wait_for
from tests.test_daemon import ROOT, DaemonProc, started_daemon

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="selenium is not installed ([test] extra)")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCRIPT_TEXT = "<script>window.__pwned = 1</script><b>مرحبا</b> I need help"


@pytest.fixture
def daemon(
    prefix: str, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DaemonProc]:
    # records of its own: the console lists tickets from PostgreSQL, and the run's shared
    # database holds every other test's tickets too (ticket ids repeat across prefixes)
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    with started_daemon(tmp_path, prefix, AGENTS_CONFIG.read_text("utf-8")) as proc:
        yield proc


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chrome'}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    with chromium_env() as env:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env=env), options=options)
        driver.set_page_load_timeout(30)
        yield driver
        driver.quit()


def cli(config: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "omnidesk", *args, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# One script reads an element whole: the thread re-renders on live events (the reply's own
# delivery among them), so an element found by one WebDriver call may be gone by the next.
READ_SHOWN = """
const el = document.querySelector(arguments[0]);
return el && {text: el.innerText, dir: el.getAttribute("dir"),
              direction: getComputedStyle(el).direction};
"""


def shown(browser: webdriver.Chrome, selector: str) -> dict[str, str] | None:
    """The text, `dir` and computed direction of the first element `selector` finds, or None."""
    found = browser.execute_script(READ_SHOWN, selector)
    return found or None


def test_console_sign_in_take_reply_resolve_and_customer_html_is_text(
    daemon: DaemonProc, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    token = cli(daemon.config, "agents", "token", "amal")
    assert token.startswith("odt_")
    status, _ = daemon.post(
        "/v1/intake/web", json.dumps({"message": SCRIPT_TEXT, "email": "x@example.sa"}).encode()
    )
    assert status == 201
    store = daemon.store()
    assert wait_for(lambda: store.ticket_count() == 1), daemon.logs()

    # the console re-renders lists on live events: an element read mid-render is not yet
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(f"http://127.0.0.1:{daemon.port}/console")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "login-button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "app")))
    wait.until(lambda d: "general" in d.find_element(By.ID, "queues").text)

    browser.find_element(By.ID, "next").click()
    wait.until(ec.visibility_of_element_located((By.ID, "ticket")))
    incoming = wait.until(lambda d: shown(d, "#thread .msg.in .text"))
    assert "<script>window.__pwned = 1</script>" in incoming["text"]  # shown, not run
    assert incoming["dir"] == "auto"
    assert browser.execute_script("return window.__pwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "#thread script, #thread b") == []

    browser.find_element(By.ID, "reply-text").send_keys("شكرًا لتواصلك. We are on it.")
    browser.find_element(By.ID, "reply").click()
    out = wait.until(lambda d: shown(d, "#thread .msg.out .text"))
    assert out["text"] == "شكرًا لتواصلك. We are on it."
    assert out["direction"] == "rtl"  # Arabic first: right-to-left
    english = shown(browser, "#thread .msg.in .text")
    assert english is not None and english["direction"] == "ltr"  # '<script>... I need help'
    daemon.drop_web("english", "Hello, I have a question about my account")
    browser.find_element(By.ID, "resolve").click()
    wait.until(lambda d: "محلولة" in d.find_element(By.ID, "t-meta").text)  # "resolved"

    # the new ticket shows up in "recent" without a reload (its live event), marked new
    wait.until(
        lambda d: any(
            "question about my account" in li.text and li.get_attribute("class") == "new"
            for li in d.find_elements(By.CSS_SELECTOR, "#recent li")
        )
    )
    shot = tmp_path / "console.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

    (ticket,) = [t for t in store.list_tickets() if "pwned" in t.preview]
    messages = store.ticket_messages(ticket.id)
    assert ticket.status.value == "resolved"
    assert [m.direction.value for m in messages][:2] == ["in", "out"]
    assert messages[1].author == "amal"
    assert daemon.stop() == 0
