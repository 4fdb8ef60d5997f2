"""The web form and /status in headless Chromium (Selenium), against `omnidesk run` in a
subprocess. The ministry's page is served from a second port (another origin, allowed in
`service.web_form.allowed_origins`): its script posts the form across origins, JSON (with a
CORS preflight) and multipart with a file, and shows the ticket number or the Arabic error.
The same page from an origin not in the list is refused by the browser, and nothing is
opened. The /status page finds the ticket with the right contact, in Arabic then English,
and says only "not found" for a wrong one."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.agentkit import AGENTS_CONFIG
from tests.services import wait_for
from tests.test_agents_console import browser  # noqa: F401  (the Chromium fixture)
from tests.test_daemon import DaemonProc, started_daemon

pytestmark = pytest.mark.slow

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PAGE = """<!DOCTYPE html>
<html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>نموذج التواصل</title></head>
<body>
<form id="f">
<input id="message" name="message"> <input id="email" name="email">
<input id="website" name="website" tabindex="-1" autocomplete="off" hidden>
<input id="file" name="attachment" type="file">
<button id="send-json" type="button">JSON</button>
<button id="send-form" type="button">form</button>
</form>
<p id="ticket"></p><p id="error"></p>
<script src="form.js"></script>
</body></html>
"""

SCRIPT = """
var api = new URLSearchParams(location.search).get("api");
function done(r) {
  return r.json().then(function (body) {
    if (body.ticket) { document.getElementById("ticket").textContent = body.ticket; }
    else { document.getElementById("error").textContent = body.error; }
  });
}
function failed(e) { document.getElementById("error").textContent = "blocked: " + e; }
document.getElementById("send-json").addEventListener("click", function () {
  fetch(api + "/v1/intake/web", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Accept-Language": "ar"},
    body: JSON.stringify({
      message: document.getElementById("message").value,
      email: document.getElementById("email").value
    })
  }).then(done).catch(failed);
});
document.getElementById("send-form").addEventListener("click", function () {
  fetch(api + "/v1/intake/web", {method: "POST", body: new FormData(document.getElementById("f"))})
    .then(done).catch(failed);
});
"""


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ministry(tmp_path: Path) -> Iterator[int]:
    """The ministry's own site: a static page on a port of its own."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "form.html").write_text(PAGE, "utf-8")
    (root / "form.js").write_text(SCRIPT, "utf-8")
    (root / "upload.pdf").write_bytes(b"%PDF-1.4 an invoice\n" * 20)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def daemon(
    prefix: str, tmp_path: Path, ministry: int, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DaemonProc]:
    # records of its own: ticket ids repeat across prefixes, and the console test lists the
    # run's shared database (tests/pgkit.py), where these tickets would look like its own
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    extra = f"  web_form: {{allowed_origins: ['http://127.0.0.1:{ministry}']}}\n"
    body = AGENTS_CONFIG.read_text("utf-8")
    with started_daemon(tmp_path, prefix, body, service_extra=extra, drop_folder=False) as proc:
        yield proc


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def test_a_page_on_another_origin_posts_the_form_and_shows_the_ticket_number(
    daemon: DaemonProc,
    browser: webdriver.Chrome,
    ministry: int,
    tmp_path: Path,
) -> None:
    wait = WebDriverWait(browser, 20)
    api = f"http://127.0.0.1:{daemon.port}"
    browser.get(f"http://127.0.0.1:{ministry}/form.html?api={api}")
    browser.find_element(By.ID, "message").send_keys("شكوى على متجر إلكتروني لم يسلم الطلب")
    browser.find_element(By.ID, "email").send_keys("browser@example.sa")
    browser.find_element(By.ID, "send-json").click()  # JSON: the browser sends a preflight
    wait.until(lambda d: text_of(d, "ticket").startswith("OD-"))
    first = text_of(browser, "ticket")
    store = daemon.store()
    ticket = store.get_ticket(first)
    assert ticket is not None and "متجر" in ticket.preview

    # multipart with a file, from the same page
    browser.find_element(By.ID, "message").clear()
    browser.find_element(By.ID, "message").send_keys("the invoice is attached")
    browser.find_element(By.ID, "file").send_keys(str(tmp_path / "site" / "upload.pdf"))
    browser.find_element(By.ID, "send-form").click()
    wait.until(lambda d: text_of(d, "ticket").startswith("OD-") and text_of(d, "ticket") != first)
    (message,) = store.ticket_messages(text_of(browser, "ticket"))
    assert [a.filename for a in message.attachments] == ["upload.pdf"]

    # a bad field: the error comes back in Arabic
    browser.find_element(By.ID, "email").clear()
    browser.find_element(By.ID, "email").send_keys("not-an-address")
    browser.find_element(By.ID, "send-json").click()
    wait.until(lambda d: text_of(d, "error") != "")
    assert "البريد الإلكتروني غير صحيح" in text_of(browser, "error")
    assert store.ticket_count() == 2


def test_a_page_on_an_origin_not_listed_is_refused_by_the_browser(
    daemon: DaemonProc,
    browser: webdriver.Chrome,
    ministry: int,
) -> None:
    wait = WebDriverWait(browser, 20)
    api = f"http://127.0.0.1:{daemon.port}"
    # "localhost" is another origin than "127.0.0.1": the same page, not in the list
    browser.get(f"http://localhost:{ministry}/form.html?api={api}")
    browser.find_element(By.ID, "message").send_keys("from a site that is not allowed")
    browser.find_element(By.ID, "email").send_keys("elsewhere@example.sa")
    browser.find_element(By.ID, "send-json").click()
    wait.until(lambda d: text_of(d, "error").startswith("blocked"))
    assert text_of(browser, "ticket") == ""
    assert daemon.store().ticket_count() == 0  # the preflight was refused: nothing was sent


def test_the_status_page_finds_the_ticket_for_its_contact_only(
    daemon: DaemonProc,
    browser: webdriver.Chrome,
) -> None:
    import json

    status, body = daemon.post(
        "/v1/intake/web",
        json.dumps({"message": "استفسار عن طلبي", "email": "track@example.sa"}).encode(),
    )
    assert status == 201
    ticket = str(body["ticket"])
    wait = WebDriverWait(browser, 20)
    browser.get(f"http://127.0.0.1:{daemon.port}/status")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("dir") == "rtl"
    browser.find_element(By.ID, "ticket").send_keys(ticket)
    browser.find_element(By.ID, "contact").send_keys("Track@Example.sa")
    browser.find_element(By.ID, "submit").click()
    wait.until(lambda d: d.find_element(By.ID, "result").is_displayed())
    assert text_of(browser, "status") == "تم الاستلام"
    assert ticket in text_of(browser, "result-ticket")
    assert "بتوقيت الرياض" in text_of(browser, "updated")
    browser.find_element(By.ID, "lang-toggle").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("dir") == "ltr")
    assert text_of(browser, "status") == "Received" and "Riyadh" in text_of(browser, "updated")

    browser.find_element(By.ID, "contact").clear()
    browser.find_element(By.ID, "contact").send_keys("someone@example.sa")
    browser.find_element(By.ID, "submit").click()
    wait.until(lambda d: "No request matches" in text_of(d, "message"))
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert wait_for(lambda: daemon.store().ticket_count() == 1)
