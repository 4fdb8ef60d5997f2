"""The dashboard on a directory login, in headless Chromium against `omnidesk run` and a
private slapd (tests/ldapkit.py): signed out it offers the token form and a link to the
console's directory sign-in (in Arabic); after the supervisor signs in at the console,
/dashboard opens without any token, and signing out there ends the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.agentkit import AGENTS_CONFIG
from tests.ldapkit import Slapd, slapd  # noqa: F401
from tests.test_agents_console import browser  # noqa: F401
from tests.test_daemon import DaemonProc, started_daemon

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(slapd: Slapd, prefix: str, tmp_path: Path) -> Iterator[DaemonProc]:
    body = AGENTS_CONFIG.read_text("utf-8") + slapd.directory_yaml()
    with started_daemon(tmp_path, prefix, body) as proc:
        yield proc


def test_a_directory_supervisor_opens_the_dashboard_without_a_token(
    daemon: DaemonProc, browser: webdriver.Chrome
) -> None:
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    base = f"http://127.0.0.1:{daemon.port}"
    browser.get(f"{base}/dashboard")
    wait.until(ec.visibility_of_element_located((By.ID, "token")))  # signed out: the token
    link = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#directory-login a")))
    wait.until(lambda d: link.text == "سجّل الدخول بحساب الدليل")  # worded from the catalogue
    link.click()  # to the console's sign-in

    wait.until(ec.visibility_of_element_located((By.ID, "user")))
    browser.find_element(By.ID, "user").send_keys("noura")  # the directory's supervisor
    browser.find_element(By.ID, "password").send_keys("noura-pw")
    browser.find_element(By.ID, "login-button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "app")))

    browser.get(f"{base}/dashboard")
    wait.until(ec.visibility_of_element_located((By.ID, "board")))
    wait.until(lambda d: "general" in d.find_element(By.ID, "queues").get_attribute("innerHTML"))
    assert browser.execute_script("return sessionStorage.getItem('odtoken')") is None
    assert not browser.find_element(By.ID, "login").is_displayed()

    browser.find_element(By.ID, "signout").click()  # ends the directory session itself
    wait.until(ec.visibility_of_element_located((By.ID, "token")))
    browser.get(f"{base}/dashboard")  # a reload does not bring the board back
    wait.until(ec.visibility_of_element_located((By.ID, "token")))
    assert not browser.find_element(By.ID, "board").is_displayed()
