"""The supervisor dashboard on a real daemon process with the operator's token
($OMNIDESK_DASHBOARD_TOKEN, no agents' login): refused without it, and, in headless
Chromium, a ticket opened through the web intake moves its queue's depth without a reload
and, once the records writer has stored it, today's opened count (from PostgreSQL).
The supervisors' side is tests/test_dashboard_live.py; the today block's figures and its
PostgreSQL-away state are tests/test_dashboard_today.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from omnidesk.store import Store
from tests.services import chromium_env, free_port, wait_for, within_one_riyadh_day
from tests.storekit import REDIS_URL, write_config

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "sup-" + uuid.uuid4().hex


OLD_ROLLUPS = ("ru:last", "ru:d:2026-03-01:all", "ru:tk:OD-2026-000001")


@pytest.fixture
def daemon(tmp_path, pg_url):
    prefix = f"test-dash-{uuid.uuid4().hex[:10]}"
    config = write_config(prefix, tmp_path / "state", tmp_path / "config.yaml")
    store = Store.from_url(REDIS_URL, prefix)
    for key in OLD_ROLLUPS:  # what an older version's report rollups left behind
        store.r.hset(f"{prefix}:{key}", "opened", "1")
    store.r.set(f"{prefix}:rux", "not a rollup")
    port = free_port()
    # records of its own: the run's shared database holds other tests' tickets of today
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMNIDESK_DASHBOARD_TOKEN": TOKEN,
           "OMNIDESK_DATABASE_URL": pg_url}  # fmt: skip
    log = tmp_path / "daemon.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnidesk", "run", "--config", str(config), "--workers", "1",
         "--port", str(port), "--drain-timeout", "5"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    assert wait_for(lambda: urllib.request.urlopen(base + "/healthz", timeout=2), 30), (
        log.read_text()
    )
    yield base, prefix
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    Store.from_url(REDIS_URL, prefix).delete_all()


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium through chromedriver (tests.services.chromium_env: its temporary
    files), quit after."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium")
    with chromium_env() as env:
        driver = webdriver.Chrome(
            options=options, service=Service(shutil.which("chromedriver"), env=env)
        )
        try:
            yield driver
        finally:
            driver.quit()


def get_json(url: str, token: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def open_ticket(base: str, text: str) -> None:
    body = json.dumps({"message": text, "email": "visitor@example.com"}).encode()
    req = urllib.request.Request(base + "/v1/intake/web", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201


def test_dashboard_data_needs_a_supervisor_token(daemon):
    base, _ = daemon
    assert get_json(base + "/v1/dashboard.json", None)[0] == 401
    assert get_json(base + "/v1/dashboard.json", "wrong")[0] == 401
    status, data = get_json(base + "/v1/dashboard.json", TOKEN)
    assert status == 200
    assert {q["queue"] for q in data["queues"]} >= {"general", "cr", "complaints"}
    assert data["lang"] == "ar" and data["labels"]["title"] == "لوحة المشرف"
    assert data["today"]["available"] is True and data["today"]["opened"] == 0


def test_the_daemon_removes_older_versions_rollup_keys(daemon):
    """Reports keep nothing in Redis now: the old rollups go at start-up, nothing else."""
    _, prefix = daemon
    store = Store.from_url(REDIS_URL, prefix)
    assert wait_for(lambda: not store.r.exists(*(f"{prefix}:{k}" for k in OLD_ROLLUPS)), 15)
    assert store.r.get(f"{prefix}:rux") == "not a rollup"


@within_one_riyadh_day
@pytest.mark.slow
def test_dashboard_in_chromium_shows_a_ticket_just_opened(daemon):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip(
            "chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
        )
    base, prefix = daemon
    with chromium() as driver:
        driver.get(f"{base}/dashboard#token={TOKEN}&lang=en")
        assert wait_for(lambda: driver.find_element("id", "board").is_displayed(), 15)
        depth = "#queues li[data-queue='complaints'] .n"
        assert driver.find_element("css selector", depth).text == "0"
        open_ticket(base, "شكوى: the shop refused my refund")
        store = Store.from_url(REDIS_URL, prefix)
        assert wait_for(lambda: store.ticket_count() == 1, 20)
        # pushed: the queue's depth moves without a reload
        assert wait_for(lambda: driver.find_element("css selector", depth).text == "1", 15)
        assert driver.find_element("tag name", "html").get_attribute("lang") == "en"
        # the writer stores the events in PostgreSQL: today's opened count reaches the page
        # too, within the today block's cache interval (15 s) and the writer's latency
        assert wait_for(
            lambda: get_json(base + "/v1/dashboard.json", TOKEN)[1]["today"]["opened"] == 1, 40
        )
        assert wait_for(lambda: driver.find_element("id", "opened-today").text == "1", 40)


PAGES = ["/dashboard", "/console", "/csat/no-such-survey"]
INLINE_CODE = re.compile(r"<script(?![^>]*\bsrc=)|<style|\son[a-z]+\s*=|\sstyle\s*=", re.I)


def get_raw(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8")


def test_every_response_forbids_framing_and_inline_code(daemon):
    base, _ = daemon
    others = ["/static/console.js", "/static/dashboard.css", "/v1/dashboard.json", "/healthz"]
    for path in [*PAGES, *others, "/no-such-page"]:
        status, headers, text = get_raw(base + path)
        assert status in (200, 401, 404), path
        csp = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, (path, headers)
        assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp, path
        assert headers.get("X-Frame-Options") == "DENY", path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("Referrer-Policy") == "no-referrer", path
        if path in PAGES:  # what the policy blocks, the pages do not use
            assert headers["Content-Type"].startswith("text/html"), path
            assert not INLINE_CODE.search(text), (path, INLINE_CODE.search(text))


INJECT = """
const done = arguments[arguments.length - 1];
document.body.insertAdjacentHTML("beforeend",
  '<img id="probe" src="/no-such.png" onerror="window.__injected = 1">');
document.getElementById("probe").addEventListener("error",
  () => setTimeout(() => done(window.__injected === undefined ? "blocked" : "ran"), 50));
"""


@pytest.mark.slow
def test_injected_inline_script_does_not_run_in_chromium(daemon):
    """Markup that got into a page (as if customer text had been parsed as HTML) runs no
    script: the pages' policy allows none but the daemon's own files."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium/chromedriver not installed")
    base, _ = daemon
    with chromium() as driver:
        driver.set_script_timeout(15)
        for page in PAGES:
            driver.get(base + page)
            assert driver.execute_async_script(INJECT) == "blocked", page
