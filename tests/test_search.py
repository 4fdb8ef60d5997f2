"""omnidesk.db.search over a real PostgreSQL: every reading of a query (ticket id, e-mail,
phone as intake normalizes it, handle, CR number, Arabic and English text), open and closed
tickets alike, ranked, with the original text as the snippet, and scoped by queues."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from omnidesk.db.search import BadQuery, search, snippet_of
from omnidesk.db.searchtext import query_forms
from tests.searchkit import add_ticket

REQUIRED = "نرجو النظر في الشكاوى المقدمة ضد المحلات في حي النسيم منذ شهرين."


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as c:
        add_ticket(
            c,
            "OD-2026-000001",
            REQUIRED,
            queue="complaints",
            status="closed",
            customer="C-1",
            identities=(("email", "huda@example.sa"), ("phone", "+966501234567")),
        )
        add_ticket(
            c,
            "OD-2026-000002",
            "شكرا على سرعة الرد",
            customer="C-2",
            minutes=1,
            identities=(("twitter_handle", "salem_k"),),
        )
        add_ticket(
            c,
            "OD-2026-000003",
            "My invoice shows a wrong amount",
            subject="Invoice",
            customer="C-3",
            cr_number="7001234567",
            minutes=2,
            identities=(("whatsapp", "966551112222"), ("phone", "+966551112222")),
        )
        add_ticket(
            c,
            "OD-2026-000004",
            "Several complaints about shops near the market",
            queue="complaints",
            customer="C-4",
            minutes=3,
        )
        add_ticket(
            c,
            "OD-2026-000005",
            "مشكلة في محل",
            queue="general",
            customer="C-1",
            minutes=4,
            more=("شكوى محل آخر وشكوى ثانية عن المحل",),
        )
        yield c  # fmt: skip


def ids(hits: list[Any]) -> list[str]:
    return [h.ticket_id for h in hits]


def test_arabic_text_finds_the_plural_with_the_original_as_snippet(conn: Any) -> None:
    hits = search(conn, "شكوى محل", queues=None)
    assert set(ids(hits)) == {"OD-2026-000001", "OD-2026-000005"}
    closed = next(h for h in hits if h.ticket_id == "OD-2026-000001")
    assert closed.status == "closed" and closed.matched == "text"
    assert "الشكاوى المقدمة ضد المحلات" in closed.snippet  # original, not folded (ى, ة)
    marked = [closed.snippet[a:b] for a, b in closed.highlights]
    assert marked == ["الشكاوى", "المحلات"]
    # the message that says both words twice ranks above the one that says them once
    assert ids(hits)[0] == "OD-2026-000005"
    assert hits[0].rank > hits[1].rank


def test_english_text_and_unrelated_words(conn: Any) -> None:
    assert ids(search(conn, "complaint shop", queues=None)) == ["OD-2026-000004"]
    assert ids(search(conn, "invoices", queues=None)) == ["OD-2026-000003"]
    assert search(conn, "refund", queues=None) == []
    assert search(conn, "شكوى مطعم", queues=None) == []


def test_ticket_id_exact_any_case(conn: Any) -> None:
    (hit,) = search(conn, "od-2026-000003", queues=None)
    assert hit.ticket_id == "OD-2026-000003" and hit.matched == "id"
    assert hit.snippet.startswith("My invoice")
    assert search(conn, "OD-2026-000099", queues=None) == []


def test_identities_normalized_as_intake_does(conn: Any) -> None:
    by_mail = search(conn, "  Huda@Example.SA ", queues=None)
    assert ids(by_mail) == ["OD-2026-000005", "OD-2026-000001"]  # both of C-1, newest first
    assert {h.matched for h in by_mail} == {"email"}
    assert ids(search(conn, "050 123 4567", queues=None))[-1] == "OD-2026-000001"
    assert ids(search(conn, "+966 50 123 4567", queues=None))[-1] == "OD-2026-000001"
    assert ids(search(conn, "٠٥٥١١١٢٢٢٢", queues=None)) == ["OD-2026-000003"]
    assert ids(search(conn, "@Salem_K", queues=None)) == ["OD-2026-000002"]


def test_commercial_registration_number(conn: Any) -> None:
    (hit,) = search(conn, "7001234567", queues=None)
    assert hit.ticket_id == "OD-2026-000003" and hit.matched == "cr_number"


def test_scoped_by_queues(conn: Any) -> None:
    assert ids(search(conn, "شكوى محل", queues=["general"])) == ["OD-2026-000005"]
    assert search(conn, "OD-2026-000001", queues=["general"]) == []
    assert ids(search(conn, "huda@example.sa", queues=["general"])) == ["OD-2026-000005"]
    assert search(conn, "complaint shop", queues=["general", "cr"]) == []
    assert search(conn, "شكوى", queues=[]) == []


def test_limit(conn: Any) -> None:
    assert len(search(conn, "huda@example.sa", queues=None, limit=1)) == 1


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201])
def test_empty_or_oversized_query(conn: Any, bad: str) -> None:
    with pytest.raises(BadQuery):
        search(conn, bad, queues=None)


def test_snippet_windows_long_text_and_keeps_marks_right() -> None:
    text = ("كلام تمهيدي طويل جدا " * 30) + "\n\nالشكاوى   المقدمة" + (" ذيل" * 60)
    snippet, marks = snippet_of(text, query_forms("شكوى"))
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= 162 and "\n" not in snippet
    assert [snippet[a:b] for a, b in marks] == ["الشكاوى"]


def test_snippet_is_display_safe_and_marks_survive() -> None:
    text = "\x1b[31mred\x1b[0m \u202eالشكاوى\u202c here"
    snippet, marks = snippet_of(text, query_forms("شكوى"))
    assert "\x1b" not in snippet and "\u202e" not in snippet
    assert [snippet[a:b] for a, b in marks] == ["الشكاوى"]


def test_a_ticket_found_two_ways_is_listed_once(conn: Any) -> None:
    conn.execute(
        "INSERT INTO identities (kind, value, customer_id) VALUES ('telegram', '7001234567', 'C-3')"
    )
    (hit,) = search(conn, "7001234567", queues=None)  # a Telegram user id and a CR number
    assert hit.ticket_id == "OD-2026-000003" and hit.matched == "telegram"


def test_an_identity_that_matches_is_not_also_searched_as_words(conn: Any) -> None:
    add_ticket(conn, "OD-2026-000006", "please write to huda@example.sa or nobody@example.sa",
               customer="C-6", minutes=5)  # fmt: skip
    found = search(conn, "huda@example.sa", queues=None)
    assert ids(found) == ["OD-2026-000005", "OD-2026-000001"]  # C-1's, not the mention
    # no customer has this address: the messages that mention it are found instead
    (hit,) = search(conn, "nobody@example.sa", queues=None)
    assert hit.ticket_id == "OD-2026-000006" and hit.matched == "text"
