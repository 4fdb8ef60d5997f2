"""The console's directory login in headless Chromium against `omnidesk run` and a private
slapd (tests/ldapkit.py): a wrong password is refused in the page's language, the right one
signs in with an HttpOnly, Secure, SameSite=Strict cookie that the page's script cannot
read, and the agent takes a ticket, replies and resolves it (every action carrying the CSRF
token); the audit trail (the events, copied into PostgreSQL) has the failure, the login and
the logout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.agentkit import AGENTS_CONFIG
from tests.ldapkit import Slapd, slapd  # noqa: F401
from tests.services import wait_for
from tests.test_agents_console import browser  # noqa: F401
from tests.test_daemon import DaemonProc, started_daemon

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(
    slapd: Slapd,
    prefix: str,
    tmp_path: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[DaemonProc]:
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)  # the console's lists
    body = AGENTS_CONFIG.read_text("utf-8") + slapd.directory_yaml()
    with started_daemon(tmp_path, prefix, body) as proc:  # slapd's password: in the env
        yield proc


def test_console_directory_login_takes_replies_and_resolves(
    daemon: DaemonProc,
    pg_url: str,
    browser: webdriver.Chrome,
) -> None:
    status, _ = daemon.post(
        "/v1/intake/web",
        json.dumps({"message": "أحتاج مساعدة في حسابي", "email": "c@x.sa"}).encode(),
    )
    assert status == 201
    store = daemon.store()
    assert wait_for(lambda: store.ticket_count() == 1), daemon.logs()

    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(f"http://127.0.0.1:{daemon.port}/console")
    wait.until(ec.visibility_of_element_located((By.ID, "user")))  # directory login is on
    browser.find_element(By.ID, "user").send_keys("layla")
    browser.find_element(By.ID, "password").send_keys("not-her-password")
    browser.find_element(By.ID, "login-button").click()
    wait.until(lambda d: d.find_element(By.ID, "login-error").text)
    assert browser.find_element(By.ID, "login-error").text == (
        "اسم المستخدم أو كلمة المرور غير صحيحة."  # "wrong user name or password", in Arabic
    )
    browser.find_element(By.ID, "user").clear()
    browser.find_element(By.ID, "user").send_keys("layla")
    browser.find_element(By.ID, "password").send_keys("layla-pw")
    browser.find_element(By.ID, "login-button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "app")))
    wait.until(lambda d: "general" in d.find_element(By.ID, "queues").text)

    (cookie,) = [c for c in browser.get_cookies() if c["name"] == "omnidesk_session"]
    assert cookie["value"].startswith("ods_")
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")
    assert "omnidesk_session" not in browser.execute_script("return document.cookie")

    browser.find_element(By.ID, "next").click()
    wait.until(ec.visibility_of_element_located((By.ID, "ticket")))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .msg.in .text"))
    browser.find_element(By.ID, "reply-text").send_keys("أهلًا، نحن على ذلك.")
    browser.find_element(By.ID, "reply").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .msg.out"))
    browser.find_element(By.ID, "resolve").click()
    wait.until(lambda d: "محلولة" in d.find_element(By.ID, "t-meta").text)  # "resolved"

    (ticket,) = store.list_tickets()
    assert ticket.status.value == "resolved"
    assert [m.author for m in store.ticket_messages(ticket.id)][1] == "layla"

    browser.find_element(By.ID, "logout").click()
    wait.until(ec.visibility_of_element_located((By.ID, "login")))

    def audited() -> list[tuple[str, str]]:  # the records writer copies them to PostgreSQL
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute(
                "SELECT type, data->>'reason' FROM events WHERE type LIKE 'log%'"
                " ORDER BY ts, stream_id"
            ).fetchall()
        return [(str(t), str(r)) for t, r in rows]

    assert wait_for(lambda: len(audited()) == 3), audited()
    assert audited() == [("login_failed", "wrong_password"), ("login", "None"), ("logout", "None")]
    log = daemon.log.read_text("utf-8", "replace")  # the daemon's sync ran at start
    assert "directory sync: 3 agents, 0 revoked" in log, daemon.logs()
    assert "layla-pw" not in log and "service-secret" not in log
    assert daemon.stop() == 0
