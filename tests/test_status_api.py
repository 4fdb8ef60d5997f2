"""Track my request over HTTP (issue 14), on a daemon in this process with the real Redis and
PostgreSQL: the right contact gets the status, a wrong contact and an unknown ticket get the
same 404 (same body, both after the minimum answer time), also once the ticket has left
Redis; the contact never reaches a log line; lookups are limited per IP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from omnidesk.db.evict import Eviction
from omnidesk.db.writer import RecordWriter
from omnidesk.status_api import MIN_ANSWER_S
from tests.test_web_form import ORIGIN, Site, open_site

CONTACT = "Huda.Status@Example.sa"


@pytest.fixture
async def site(prefix: str, tmp_path: Path, pg_url: str) -> AsyncIterator[Site]:
    running = await open_site(tmp_path, prefix, pg_url, "status_lookups_per_ip: 12")
    yield running
    await running.daemon.__aexit__(None, None, None)


@pytest.fixture
async def guarded_site(prefix: str, tmp_path: Path, pg_url: str) -> AsyncIterator[Site]:
    limits = "status_lookups_per_ip: 100\nstatus_failures_per_ticket: 3"
    running = await open_site(tmp_path, prefix, pg_url, limits)
    yield running
    await running.daemon.__aexit__(None, None, None)


async def lookup(site: Site, ticket: str, contact: str, **headers: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    status, _, body = await site.call(
        "POST", "/v1/status", json={"ticket": ticket, "contact": contact}, headers=headers
    )
    return status, body, time.monotonic() - started


async def test_the_owner_sees_the_status_and_no_one_else_learns_anything(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, _, opened = await site.post(
        {"message": "تجديد السجل التجاري", "email": CONTACT, "phone": "0551234567"}
    )
    assert status == 201
    tid = opened["ticket"]

    status, body, took = await lookup(site, tid, "huda.status@example.SA")
    assert status == 200 and body["ticket"] == tid and body["status"] == "new"
    assert body["status_text"] == {"ar": "تم الاستلام", "en": "Received"}
    assert body["queue"] == {"ar": "خدمة العملاء", "en": "Customer service"}  # no internal name
    assert body["first_response_due"] and body["updated_at"]
    assert took >= MIN_ANSWER_S * 0.9
    status, body2, _ = await lookup(site, tid, "+966 55 123 4567")
    assert status == 200 and body2 == body

    wrong_status, wrong, wrong_took = await lookup(site, tid, "someone.else@example.sa")
    none_status, none, none_took = await lookup(site, "OD-2020-000777", CONTACT)
    assert wrong_status == none_status == 404 and wrong == none  # the very same answer
    assert wrong["error"] == "لا يوجد طلب بهذا الرقم وبيانات التواصل هذه."
    assert min(wrong_took, none_took) >= MIN_ANSWER_S * 0.9
    status, body, _ = await lookup(site, tid, "", **{"Accept-Language": "en"})
    assert status == 404 and body["error"] == "No request matches this number and contact."

    # GET works too (for clients that cannot POST), with the same answers
    status, _, body = await site.call(
        "GET", f"/v1/status/{tid.lower()}", params={"contact": CONTACT, "lang": "en"}
    )
    assert status == 200 and body["ticket"] == tid
    status, _, body = await site.call("GET", f"/v1/status/{tid}", params={"contact": "x@y.sa"})
    assert status == 404 and body == none

    # the page's origin may call it from a browser
    status, headers, _ = await site.call(
        "OPTIONS",
        "/v1/status",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert status == 204 and headers["Access-Control-Allow-Origin"] == ORIGIN

    # evicted: only PostgreSQL has it, and the answers are the same kind
    store = site.store
    store.set_status(tid, "resolved", actor="amal")
    await RecordWriter(store, site.daemon.records.info).drain()
    eviction = Eviction(
        store, site.daemon.records, reopen_window=timedelta(seconds=1),
        customer_grace=timedelta(0),
    )  # fmt: skip
    later = datetime.now(UTC) + timedelta(seconds=5)
    # the receipt's delivery status can land after the drain: written again until evicted
    evicted: list[str] = []
    for _ in range(50):
        evicted = (await asyncio.to_thread(eviction.run, later)).evicted
        if evicted:
            break
        await RecordWriter(store, site.daemon.records.info).drain()
        await asyncio.sleep(0.1)
    assert evicted == [tid]
    assert store.get_ticket(tid) is None
    status, body, _ = await lookup(site, tid, CONTACT)
    assert status == 200 and body["status"] == "resolved" and body["first_response_due"] is None
    status, body, _ = await lookup(site, tid, "someone.else@example.sa")
    assert status == 404 and body == none

    logged = "\n".join(r.getMessage() for r in caplog.records).lower()
    assert "huda.status" not in logged and "0551234567" not in logged
    assert "someone.else" not in logged


async def test_lookups_are_limited_per_ip(site: Site) -> None:
    answers = await asyncio.gather(*(lookup(site, f"OD-2020-{n:06d}", CONTACT) for n in range(14)))
    codes = sorted(a[0] for a in answers)
    assert codes == [404] * 12 + [429] * 2
    limited = next(a[1] for a in answers if a[0] == 429)
    assert limited["code"] == "rate_limited"


async def test_the_status_page_is_arabic_first_and_loads_its_script(site: Site) -> None:
    status, headers, page = await site.call("GET", "/status")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<html lang="ar" dir="rtl">' in page and '<script src="/static/status.js">' in page
    assert "<script>" not in page and " style=" not in page  # nothing the CSP would refuse
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    status, headers, script = await site.call("GET", "/static/status.js")
    assert status == 200 and "/v1/status" in script
    status, headers, _ = await site.call("GET", "/static/status.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")


async def test_the_public_routes_in_the_openapi_file_are_served(site: Site) -> None:
    from tests.test_agents_api import PUBLIC_PATHS, _openapi_operations

    live = {
        (route.resource.canonical, route.method)
        for route in site.daemon._runner.app.router.routes()  # type: ignore[union-attr]
        if route.resource is not None
    }
    public = [(p, m) for p, m, _ in _openapi_operations() if p.startswith(PUBLIC_PATHS)]
    assert len(public) == 8  # web form 3, status 2, guides 3
    for path, method in public:
        assert (path, method) in live, f"{method} {path} documented but not served"
    served = {(p, m) for p, m in live if p.startswith(PUBLIC_PATHS) and m in ("GET", "POST")}
    assert served == set(public)


async def test_failed_lookups_are_limited_per_ticket_alike_for_unknown_ones(
    guarded_site: Site,
) -> None:
    """Guessing one ticket's contact from many addresses: after 3 failures every lookup of
    that number gets 429 for the window, the owner's too; an unknown number goes through
    the very same answers, so neither the 404s nor the 429 prove a ticket exists."""
    site = guarded_site
    _, _, mine = await site.post({"message": "تجديد السجل", "email": CONTACT})
    _, _, other = await site.post({"message": "سؤال آخر", "email": "other.owner@example.sa"})
    tid, unknown = mine["ticket"], "OD-2020-000777"
    seen: dict[str, list[int]] = {tid: [], unknown: []}
    for number in (tid, unknown):
        for guess in ("a@example.sa", "b@example.sa", "0500000001", "c@example.sa"):
            status, body, _ = await lookup(site, number.lower(), guess)
            seen[number].append(status)
        status, body, _ = await lookup(site, number, CONTACT)
        seen[number].append(status)
        assert body["code"] == "rate_limited"
    assert seen[tid] == seen[unknown] == [404, 404, 404, 429, 429]
    # another ticket is not held up by them
    status, body, _ = await lookup(site, other["ticket"], "other.owner@example.sa")
    assert status == 200 and body["ticket"] == other["ticket"]


def test_ipv6_clients_are_counted_by_their_64(prefix: str) -> None:
    """One subscriber gets a whole IPv6 /64: its addresses share one limit; IPv4 (and an
    IPv4-mapped IPv6 address) is counted per address."""
    from omnidesk.ratelimit import RateLimiter, client_key
    from omnidesk.store import Store
    from tests.storekit import REDIS_URL

    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff:1:2:3")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key("192.0.2.7") == "192.0.2.7" != client_key("192.0.2.8")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key(None) == "-" and client_key("unix-socket") == "unix-socket"
    limiter = RateLimiter(Store.from_url(REDIS_URL, prefix))
    answers = [
        limiter.hit("test:ip", client_key(f"2001:db8:1:2::{n:x}"), 3, 60) for n in range(1, 6)
    ]
    assert answers[:3] == [None] * 3 and all(a is not None for a in answers[3:])
    # the window runs from the first hit, not to a wall-clock boundary that would reset it
    assert answers[3] in (59, 60)
    assert limiter.hit("test:ip", client_key("2001:db8:1:3::1"), 3, 60) is None
