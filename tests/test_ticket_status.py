"""Track my request, on the real Redis and PostgreSQL: the status comes back only for the
ticket's own e-mail or phone (any case, any usual phone spelling), never for a wrong contact
or an unknown ticket, also once the ticket has left Redis; queue names never leak."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from omnidesk.db.evict import Eviction
from omnidesk.db.records import Records
from omnidesk.db.writer import RecordWriter
from omnidesk.runtime import Runtime
from omnidesk.ticket_status import (
    NEUTRAL_TITLE,
    PublicStatus,
    TicketStatus,
    contact_keys,
    render_both,
    render_text,
    ticket_number,
)
from tests.storekit import config_for, web


def test_ticket_numbers_as_customers_type_them() -> None:
    assert ticket_number("OD-2026-000123") == "OD-2026-000123"
    assert ticket_number("  #od-٢٠٢٦-١٢٣ ") == "OD-2026-000123"
    assert ticket_number("OD ـ 2026 ـ ۰۰۰۱۲۳") == "OD-2026-000123"
    assert ticket_number("OD-2026-000123 please") is None
    assert ticket_number("my ticket OD-2026-000123") is None
    assert ticket_number("") is None
    spaced = "#  OD  -  2026  -  000000000123"  # generous spacing is still a number alone
    assert ticket_number(spaced) == "OD-2026-000123"
    assert ticket_number(spaced + " " * 80) == "OD-2026-000123"  # stripped first
    assert ticket_number("OD-2026-" + " " * 60 + "1") is None  # no number is this long


def test_contacts_normalize_like_intake() -> None:
    assert contact_keys(" Huda@Example.SA ") == {"email:huda@example.sa"}
    assert "phone:+966501234567" in contact_keys("٠٥٠ ١٢٣ ٤٥٦٧")
    assert "phone:+966501234567" in contact_keys("+966 (50) 123-4567")
    assert contact_keys("not a contact") == set()
    assert contact_keys("12") == set()


def test_status_for_the_owner_only_hot_and_evicted(
    prefix: str, tmp_path: Path, pg_url: str
) -> None:
    loaded = config_for(prefix, tmp_path / "state")
    records = Records(pg_url)
    runtime = Runtime.for_service(loaded, records=records)
    store = runtime.store
    queues = dict(loaded.data.queues)
    queues["cr"] = queues["cr"].model_copy(
        update={"public_title": {"ar": "السجل التجاري", "en": "Commercial registration"}}
    )
    lookup = TicketStatus(store, queues, records)

    cr = runtime.process(
        [web("تجديد السجل التجاري", email="Huda@Example.sa", phone="0501234567")]
    ).results[0]
    other = runtime.process([web("استفسار عام", email="someone@example.sa")]).results[0]
    assert cr.ticket_id and other.ticket_id

    found = lookup.for_contact(cr.ticket_id, "huda@example.SA")
    assert isinstance(found, PublicStatus)
    assert found.status == "new" and found.queue_title["en"] == "Commercial registration"
    assert found.first_response_due is not None and found.resolution_due is not None
    assert found.first_response_due > datetime.now(UTC)
    assert lookup.for_contact(cr.ticket_id.lower(), "+966 50 123 4567") == found
    assert lookup.for_contact(cr.ticket_id, "٠٥٠١٢٣٤٥٦٧") == found

    # a wrong contact, another customer's contact, an unknown ticket: all the same None
    assert lookup.for_contact(cr.ticket_id, "huda@example.com") is None
    assert lookup.for_contact(cr.ticket_id, "someone@example.sa") is None
    assert lookup.for_contact(cr.ticket_id, "0509999999") is None
    assert lookup.for_contact(cr.ticket_id, "") is None
    assert lookup.for_contact("OD-2020-999999", "huda@example.sa") is None
    assert lookup.for_contact("../etc", "huda@example.sa") is None

    # a queue without public_title shows the neutral title, never its name
    general = lookup.for_contact(other.ticket_id, "someone@example.sa")
    assert general is not None and general.queue_title == NEUTRAL_TITLE
    assert "general" not in str(general.to_json())

    # resolved, written, evicted: only PostgreSQL has it now
    store.set_status(cr.ticket_id, "resolved", actor="amal")
    asyncio.run(RecordWriter(store, pg_url).drain())
    window = timedelta(seconds=1)
    eviction = Eviction(store, records, reopen_window=window, customer_grace=timedelta(0))
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert eviction.run(later).evicted == [cr.ticket_id]
    assert store.get_ticket(cr.ticket_id) is None
    cold = lookup.for_contact(cr.ticket_id, "HUDA@example.sa")
    assert cold is not None and cold.status == "resolved"
    assert cold.queue_title["ar"] == "السجل التجاري"
    assert cold.first_response_due is None and cold.resolution_due is None
    assert lookup.for_contact(cr.ticket_id, "0501234567") is not None
    assert lookup.for_contact(cr.ticket_id, "someone@example.sa") is None
    assert lookup.for_contact(cr.ticket_id, "huda@example.com") is None
    records.close()


def test_the_chat_text_in_both_languages_in_riyadh_time() -> None:
    status = PublicStatus(
        ticket_id="OD-2026-000123",
        status="open",
        status_text={"ar": "قيد المعالجة", "en": "In progress"},
        queue_title={"ar": "السجل التجاري", "en": "Commercial registration"},
        updated_at=datetime(2026, 12, 4, 21, 30, tzinfo=UTC),
        first_response_due=datetime(2026, 12, 5, 6, 0, tzinfo=UTC),
    )
    ar = render_text(status, "ar")
    assert "OD-2026-000123" in ar and "قيد المعالجة" in ar and "السجل التجاري" in ar
    assert "2026-12-05 00:30" in ar and "بتوقيت الرياض" in ar  # 21:30 UTC is 00:30 in Riyadh
    assert "2026-12-05 09:00" in ar and "موعد الحل" not in ar
    en = render_text(status, "en")
    assert "In progress" in en and "2026-12-05 00:30" in en and "Riyadh" in en
    both = render_both(status, "en")
    assert both.index("In progress") < both.index("قيد المعالجة")
