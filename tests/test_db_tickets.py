"""Ticket lists from PostgreSQL: keyset pages in (created_at DESC, id DESC) order that
neither skip nor repeat a ticket (ties on created_at included), every filter, an agent's
queues merged, and GET /v1/tickets and `omnidesk tickets` reading them."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from omnidesk.agents.routes import add_routes
from omnidesk.db.records import Records
from omnidesk.db.tickets import BadCursor, decode_cursor, encode_cursor, list_tickets
from tests.agentkit import make

BASE = datetime(2026, 3, 1, 8, tzinfo=UTC)
QUEUES = ("general", "complaints", "quiet")


def seed(conn: psycopg.Connection[Any], n: int = 170) -> list[dict[str, Any]]:
    """n tickets; every third shares its created_at with the one before (ties)."""
    rnd = random.Random(5)
    rows = []
    for i in range(n):
        created = BASE + timedelta(minutes=10 * (i - i % 3 // 2))
        rows.append({
            "id": f"OD-2026-{i + 1:06d}", "customer_id": f"C-{i % 7:08d}",
            "channel": rnd.choice(("email", "whatsapp", "web")), "queue": rnd.choice(QUEUES),
            "status": rnd.choice(("new", "open", "resolved")), "created_at": created,
            "tags": rnd.sample(["vip", "fraud", "cr"], rnd.randrange(0, 3)),
            "subject": f"subject {i}",
        })  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO tickets (id, customer_id, channel, queue, status, created_at, "
            "updated_at, tags, subject) VALUES (%(id)s, %(customer_id)s, %(channel)s, "
            "%(queue)s, %(status)s, %(created_at)s, %(created_at)s, %(tags)s, %(subject)s)",
            rows,
        )
    conn.commit()
    return rows


def newest_first(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)]


def all_pages(conn: psycopg.Connection[Any], limit: int, **filters: Any) -> list[list[str]]:
    pages, before = [], None
    while True:
        page = list_tickets(conn, before=before, limit=limit, **filters)
        pages.append([t.id for t in page.tickets])
        if page.next is None:
            return pages
        before = page.next


@pytest.fixture
def conn(pg_url: str) -> psycopg.Connection[Any]:
    with psycopg.connect(pg_url) as c:
        yield c


def test_pages_of_one_queue_cover_it_once_in_order(conn) -> None:
    rows = seed(conn)
    want = newest_first([r for r in rows if r["queue"] == "general"])
    pages = all_pages(conn, 20, queue="general")
    assert all(len(p) == 20 for p in pages[:-1]) and 0 < len(pages[-1]) <= 20
    assert [t for p in pages for t in p] == want


def test_an_agents_queues_are_merged_in_order(conn) -> None:
    rows = seed(conn)
    mine = ["general", "quiet"]
    want = newest_first([r for r in rows if r["queue"] in mine])
    assert [t for p in all_pages(conn, 25, queue=mine) for t in p] == want
    assert list_tickets(conn, queue=[]).tickets == []


def test_every_filter(conn) -> None:
    rows = seed(conn)
    since, until = BASE + timedelta(hours=5), BASE + timedelta(hours=20)
    cases = [
        ({"status": "open"}, lambda r: r["status"] == "open"),
        ({"customer": "C-00000003"}, lambda r: r["customer_id"] == "C-00000003"),
        ({"channel": "web", "queue": "quiet"}, lambda r: r["channel"] == "web"
         and r["queue"] == "quiet"),
        ({"tag": "fraud"}, lambda r: "fraud" in r["tags"]),
        ({"since": since, "until": until}, lambda r: since <= r["created_at"] < until),
    ]  # fmt: skip
    for filters, keep in cases:
        want = newest_first([r for r in rows if keep(r)])
        assert want, filters
        assert [t for p in all_pages(conn, 7, **filters) for t in p] == want, filters
    page = list_tickets(conn, queue="complaints", status="resolved", limit=3)
    assert {t.queue for t in page.tickets} == {"complaints"}
    assert {t.status.value for t in page.tickets} == {"resolved"}


def test_cursors_round_trip_and_forgeries_are_refused() -> None:
    at = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor((at, "OD-2026-000001"))) == (at, "OD-2026-000001")
    with pytest.raises(BadCursor):
        decode_cursor("not-a-cursor!")


@pytest.fixture
async def api(prefix: str, tmp_path: Path, pg_url: str) -> AsyncIterator[dict[str, Any]]:
    _, service, _ = make(prefix, tmp_path)
    records = Records(pg_url)
    service.records = service.desk.records = records
    app = web.Application()
    add_routes(service)(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield {"client": client, "service": service, "token": service.tokens.create("sara")}
    await client.close()
    records.close()


async def test_the_api_lists_from_the_records_scoped_to_the_agents_queues(api, pg_url) -> None:
    with psycopg.connect(pg_url) as conn:
        rows = seed(conn)
    client, headers = api["client"], {"Authorization": f"Bearer {api['token']}"}
    got, url = [], "/v1/tickets?limit=30&status=open"
    while url:
        r = await client.get(url, headers=headers)
        assert r.status == 200, await r.text()
        body = await r.json()
        got += [t["id"] for t in body["tickets"]]
        url = body["next"] and f"/v1/tickets?limit=30&status=open&before={body['next']}"
    mine = [r for r in rows if r["queue"] in ("general", "quiet") and r["status"] == "open"]
    assert got == newest_first(mine)  # sara's queues only
    r = await client.get("/v1/tickets?queue=complaints", headers=headers)
    assert r.status == 403
    r = await client.get("/v1/tickets?tag=vip&channel=web&since=2026-03-01", headers=headers)
    assert r.status == 200
    tags = [t["tags"] for t in (await r.json())["tickets"]]
    assert tags and all("vip" in t for t in tags)
    r = await client.get("/v1/tickets?before=garbage!", headers=headers)
    assert r.status == 400


def test_cli_lists_from_the_records(conn, pg_url, monkeypatch, capsys) -> None:
    from omnidesk.cli import main

    rows = seed(conn)
    monkeypatch.setenv("OMNIDESK_DATABASE_URL", pg_url)
    assert main(["tickets", "--queue", "general", "--limit", "5", "--json"]) == 0
    out = capsys.readouterr()
    ids = [json.loads(line)["id"] for line in out.out.splitlines()]
    want = newest_first([r for r in rows if r["queue"] == "general"])
    assert ids == want[:5]
    cursor = out.err.split("--before ")[1].strip()
    assert main(["tickets", "--queue", "general", "--limit", "5", "--before", cursor]) == 0
    table = capsys.readouterr().out
    assert want[5] in table and want[4] not in table
