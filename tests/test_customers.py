"""The customer record on the real PostgreSQL and Redis: show by id and by identity, export,
erase (PostgreSQL, Redis, raw archive; the counts stay), merge and unmerge (exactly back, live
intake follows), tags (PostgreSQL and the hot customer hash), the audit trail, retention."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from omnidesk.archive import Archive
from omnidesk.archiving import TicketArchive
from omnidesk.db import customers, erasure, merging
from omnidesk.db.customers import RecordRefused, UnknownCustomer
from omnidesk.db.erasure import PERSONAL_EVENT_FIELDS
from omnidesk.db.retention import apply_retention
from omnidesk.runtime import Runtime
from tests.crmkit import T0, customer, event, message, mirror, ticket
from tests.storekit import web


@pytest.fixture
def conn(pg_url: str) -> Any:
    with psycopg.connect(pg_url, autocommit=True) as c:
        yield c


def seed_huda(conn: psycopg.Connection[Any]) -> None:
    """One person on two channels: an open ticket and a closed, surveyed one."""
    customer(
        conn,
        "C-00000001",
        "Huda Saleh",
        tags=["vip"],
        identities=[("email", "huda@example.sa"), ("phone", "+966512345678")],
    )
    ticket(
        conn,
        "OD-2026-000001",
        "C-00000001",
        "general",
        "open",
        subject="رخصة",
        preview="أريد تجديد الرخصة",
    )
    ticket(
        conn,
        "OD-2026-000002",
        "C-00000001",
        "complaints",
        "closed",
        channel="email",
        created=T0 - timedelta(days=40),
        first_response=T0 - timedelta(days=40) + timedelta(hours=2),
        resolved=T0 - timedelta(days=39),
        closed=T0 - timedelta(days=38),
        subject="complaint about a shop",
    )
    message(conn, "OD-2026-000001", "أريد تجديد الرخصة", author="Huda Saleh")
    message(conn, "OD-2026-000002", "the shop overcharged me", author="Huda Saleh")
    message(conn, "OD-2026-000002", "we are on it", direction="out", author="omar")
    event(
        conn,
        "csat",
        "OD-2026-000002",
        "complaints",
        actor="customer",
        score="4",
        comment="Huda here: quick and kind",
        via="web",
    )
    customer(conn, "C-00000002", "Someone Else", identities=[("email", "else@example.sa")])
    ticket(conn, "OD-2026-000003", "C-00000002", "general", "new")


def test_show_by_id_and_by_every_kind_of_identity(conn: psycopg.Connection[Any]) -> None:
    seed_huda(conn)
    doc = customers.show(conn, "C-00000001")
    assert doc["customer"]["name"] == "Huda Saleh" and doc["customer"]["tags"] == ["vip"]
    assert doc["customer"]["segment"] == "consumer" and doc["customer"]["region"] == "riyadh"
    assert [(i["kind"], i["value"]) for i in doc["identities"]] == [
        ("email", "huda@example.sa"),
        ("phone", "+966512345678"),
    ]
    by_id = {t["id"]: t for t in doc["tickets"]}
    assert set(by_id) == {"OD-2026-000001", "OD-2026-000002"}  # not the other customer's
    closed = by_id["OD-2026-000002"]
    assert (closed["channel"], closed["queue"], closed["outcome"]) == (
        "email",
        "complaints",
        "closed",
    )
    assert closed["first_response_at"].startswith("2025-12-01T11:00")
    assert closed["resolved_at"] and closed["closed_at"]
    assert by_id["OD-2026-000001"]["outcome"] == "open"
    assert [(c["ticket"], c["score"], c["via"]) for c in doc["csat"]] == [
        ("OD-2026-000002", 4, "web")
    ]
    assert doc["csat"][0]["comment"] == "Huda here: quick and kind"
    for spelling in (
        "HUDA@example.sa",
        "email:huda@example.sa",
        "+966512345678",
        "0512345678",
        "phone:+966512345678",
        " huda@example.sa ",
    ):
        assert customers.show(conn, spelling)["customer"]["id"] == "C-00000001", spelling
    with pytest.raises(UnknownCustomer):
        customers.show(conn, "nobody@example.sa")
    with pytest.raises(UnknownCustomer):
        customers.show(conn, "C-99999999")
    # scoped to an agent's queues: only those tickets; none of them is "unknown"
    scoped = customers.show(conn, "C-00000001", ["general"])
    assert [t["id"] for t in scoped["tickets"]] == ["OD-2026-000001"] and scoped["csat"] == []
    with pytest.raises(UnknownCustomer):
        customers.show(conn, "C-00000002", ["complaints"])


def test_a_merged_customer_resolves_to_its_target_and_says_so(
    conn: psycopg.Connection[Any],
) -> None:
    seed_huda(conn)
    merging.merge(conn, "else@example.sa", "C-00000001", "amal")
    doc = customers.show(conn, "C-00000002")
    assert doc["customer"]["id"] == "C-00000001" and doc["resolved_from"] == "C-00000002"
    assert "merged into C-00000001" in doc["note"]
    assert "OD-2026-000003" in {t["id"] for t in doc["tickets"]}
    assert ("email", "else@example.sa") in {(i["kind"], i["value"]) for i in doc["identities"]}


def test_export_holds_everything_about_the_person_and_is_audited(
    conn: psycopg.Connection[Any],
) -> None:
    seed_huda(conn)
    customers.set_tags(conn, "C-00000001", ["gold"], [], "boss")
    doc = json.loads(customers.export_json(customers.export(conn, "huda@example.sa", "boss")))
    assert doc["customer_id"] == "C-00000001"
    assert [c["name"] for c in doc["customers"]] == ["Huda Saleh"]
    assert {i["value"] for i in doc["identities"]} == {"huda@example.sa", "+966512345678"}
    assert {t["id"] for t in doc["tickets"]} == {"OD-2026-000001", "OD-2026-000002"}
    bodies = {m["body"] for m in doc["messages"]}
    assert bodies == {"أريد تجديد الرخصة", "the shop overcharged me", "we are on it"}
    assert [e["type"] for e in doc["events"]] == ["csat"]
    assert doc["events"][0]["data"]["comment"] == "Huda here: quick and kind"
    assert [a["action"] for a in doc["audit"]] == ["tag"]  # the export's own row comes after
    assert "else@example.sa" not in json.dumps(doc) and "OD-2026-000003" not in json.dumps(doc)
    rows = conn.execute("SELECT actor, action, subject, detail FROM audit ORDER BY id").fetchall()
    assert rows[-1][:3] == ("boss", "export", "C-00000001")
    assert rows[-1][3] == {"tickets": 2, "messages": 3, "events": 1}


def counts_by_queue(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT queue, status, channel, count(*), min(created_at), max(closed_at)"
        " FROM tickets GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()


def test_erase_removes_personal_data_from_postgres_redis_and_the_raw_archive(
    conn: psycopg.Connection[Any], runtime: Runtime, tmp_path: Path
) -> None:
    store, state = runtime.store, tmp_path / "state"
    # hot: two tickets through the real intake (their raw payloads go to the archive)
    first = runtime.process(
        [web("please renew my licence", email="sami@example.sa", name="Sami Q", phone="0551112222")]
    ).results[0]
    second = runtime.process([web("and my trademark", email="sami@example.sa")]).results[0]
    other = runtime.process([web("someone else's question", email="x@example.sa")]).results[0]
    for r in (first, second, other):
        mirror(conn, store, r.ticket_id)
    cid = first.customer_id
    assert second.customer_id == cid != other.customer_id
    # cold: an old closed ticket only in PostgreSQL, its raw payload and attachment archived
    archive = Archive(state)
    raw = archive.put(b"From: Sami Q <sami@example.sa>\r\n\r\nold complaint")
    pic = archive.put(b"\x89PNG a photo of my id card")
    ticket(
        conn,
        "OD-2025-000009",
        cid,
        "complaints",
        "closed",
        channel="email",
        created=T0 - timedelta(days=400),
        closed=T0 - timedelta(days=390),
        subject="Sami's old complaint",
        cr_number="1010101010",
    )
    message(
        conn,
        "OD-2025-000009",
        "old complaint text",
        author="Sami Q",
        raw_ref=raw,
        attachments=[{"filename": "id-card.png", "sha256": pic, "size": 27}],
        channel="email",
    )
    message(conn, "OD-2025-000009", "reply to Sami", direction="out", author="omar")
    event(conn, "csat", "OD-2025-000009", "complaints", score="2", comment="Sami: too slow")
    event(
        conn,
        "transferred",
        "OD-2025-000009",
        "complaints",
        actor="amal",
        reason="Sami asked for Omar",
        **{"from": "general"},
    )
    # the monthly ticket archive: Sami's old ticket and someone else's
    months = TicketArchive(state)
    write_month(
        months,
        "2024-11",
        [
            archived_record("OD-2025-000009", cid, "Sami Q", "sami@example.sa"),
            archived_record("OD-2025-000010", "C-7", "Nour", "n@example.sa"),
        ],
    )
    hot_raws = [store.get_message(r.message_id).raw_ref for r in (first, second)]
    other_raw = store.get_message(other.message_id).raw_ref
    assert all(archive.get(d) for d in [*hot_raws, raw, pic, other_raw])
    before = counts_by_queue(conn)

    done = erasure.erase_customer(conn, "sami@example.sa", "boss", store, state)

    assert done["customer"] == cid and done["tickets"] == 3 and done["files"] == 4
    # PostgreSQL: nothing that names or quotes Sami; the statistics as they were
    assert counts_by_queue(conn) == before
    name, erased_at = conn.execute(
        "SELECT name, erased_at FROM customers WHERE id = %s", (cid,)
    ).fetchone()
    assert name == "" and erased_at is not None
    assert (
        conn.execute("SELECT count(*) FROM identities WHERE customer_id = %s", (cid,)).fetchone()[0]
        == 0
    )
    dump = json.dumps(
        conn.execute(
            "SELECT t.*, m.* FROM tickets t JOIN messages m ON m.ticket_id = t.id"
            " WHERE t.customer_id = %s",
            (cid,),
        ).fetchall(),
        default=str,
    )
    for secret in ("Sami", "licence", "trademark", "old complaint", "id-card", "1010101010", raw):
        assert secret not in dump, secret
    assert "omar" in dump  # an agent's own name on its reply stays
    events = dict(
        conn.execute("SELECT type, data FROM events WHERE ticket_id = 'OD-2025-000009'").fetchall()
    )
    assert events["csat"] == {"score": "2"} and events["transferred"] == {"from": "general"}
    # Redis: no identity leads to Sami, the hot records hold no text
    assert store.r.hget(store.key("identity"), "email:sami@example.sa") is None
    assert store.r.hget(store.key("identity"), "phone:+966551112222") is None
    assert store.r.hget(store.key("identity"), "email:x@example.sa") == other.customer_id
    assert store.get_customer(cid).name == "" and store.get_customer(cid).identities == []
    for r in (first, second):
        t, m = store.get_ticket(r.ticket_id), store.get_message(r.message_id)
        assert (t.subject, t.preview, m.text, m.author, m.raw_ref) == ("", "", "", "", None)
        assert t.queue and t.status  # routing state stays
    hot_ticket = json.dumps(store.r.hgetall(store.key("ticket", first.ticket_id)))
    assert "Sami" not in hot_ticket
    assert "sami@" not in hot_ticket and "551112222" not in hot_ticket  # its contacts too
    # the raw archive: Sami's files gone, the other customer's kept
    assert [archive.get(d) for d in [*hot_raws, raw, pic]] == [None] * 4
    assert archive.get(other_raw) is not None
    assert store.get_message(other.message_id).text == "someone else's question"
    kept = {r["ticket"]["id"]: json.dumps(r) for r in months.records()}
    assert "Sami" not in kept["OD-2025-000009"] and "sami@" not in kept["OD-2025-000009"]
    assert '"queue": "complaints"' in kept["OD-2025-000009"]
    assert "Nour" in kept["OD-2025-000010"] and "n@example.sa" in kept["OD-2025-000010"]
    assert done["archived_records"] == 1
    # idempotent: again, nothing more to do, the first time kept
    again = erasure.erase_customer(conn, cid, "boss", store, state)
    assert again["identities"] == 0 and again["files"] == 0
    assert (
        conn.execute("SELECT erased_at FROM customers WHERE id = %s", (cid,)).fetchone()[0]
        == erased_at
    )
    audit = conn.execute(
        "SELECT actor, action, subject, detail FROM audit WHERE action = 'erase' ORDER BY id"
    ).fetchall()
    assert [(a, b, c) for a, b, c, _ in audit] == [("boss", "erase", cid)] * 2
    assert audit[0][3]["tickets"] == 3 and "sami" not in json.dumps(audit).lower()
    with pytest.raises(RecordRefused):
        merging.merge(conn, other.customer_id, cid, "boss", store)


def write_month(months: TicketArchive, month: str, records: list[dict[str, Any]]) -> None:
    """A month file as the gzip ticket archive wrote them (nothing writes them any more;
    `omnidesk db import-archive` and the erasure read them)."""
    months.root.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    with open(months.root / f"{month}.jsonl.gz", "ab") as fh:
        fh.write(gzip.compress(data))


def archived_record(tid: str, cid: str, name: str, email: str) -> dict[str, Any]:
    """A record as omnidesk.archiving writes one."""
    return {
        "ticket": {
            "id": tid,
            "customer_id": cid,
            "queue": "complaints",
            "status": "closed",
            "subject": f"{name}'s old complaint",
            "preview": f"from {name}",
            "created_at": "2024-11-02T10:00:00+00:00",
            "thread_keys": [f"email:{email}"],
        },
        "messages": [
            {
                "id": f"{tid}-m",
                "direction": "in",
                "text": f"I am {name}",
                "author": name,
                "raw_ref": "ab" * 32,
                "attachments": [{"filename": f"{name}.png", "size": 3}],
            }
        ],
        "customer": {"id": cid, "name": name, "identities": [{"kind": "email", "value": email}]},
        "sla": None,
        "archived_at": "2025-02-01T00:00:00+00:00",
    }


def redis_state(store: Any, cids: list[str], tids: list[str]) -> dict[str, Any]:
    return {
        "identity": store.r.hgetall(store.key("identity")),
        "ids": {c: sorted(store.r.smembers(store.key("customer", c, "ids"))) for c in cids},
        "tickets": {
            c: store.r.zrange(store.key("customer", c, "tickets"), 0, -1, withscores=True)
            for c in cids
        },
        "owner": {t: store.r.hget(store.key("ticket", t), "customer_id") for t in tids},
        "tags": {c: store.r.hget(store.key("customer", c), "tags") for c in cids},
    }


def pg_state(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    return {
        "identities": conn.execute("SELECT * FROM identities ORDER BY 1, 2").fetchall(),
        "tickets": conn.execute("SELECT id, customer_id FROM tickets ORDER BY id").fetchall(),
        "customers": conn.execute(
            "SELECT id, name, tags, merged_into FROM customers ORDER BY id"
        ).fetchall(),
    }


def test_merge_moves_everything_live_intake_follows_and_unmerge_restores_exactly(
    conn: psycopg.Connection[Any], runtime: Runtime
) -> None:
    store = runtime.store
    a = runtime.process([web("question from my e-mail", email="one@example.sa")]).results[0]
    b = runtime.process([web("question from my phone", phone="0553334444")]).results[0]
    c = runtime.process([web("again from my phone", phone="0553334444")]).results[0]
    for r in (a, b, c):
        mirror(conn, store, r.ticket_id)
    src, tgt = b.customer_id, a.customer_id
    customers.set_tags(conn, src, ["vip"], [], "amal", store)
    customers.set_tags(conn, tgt, ["arabic"], [], "amal", store)
    tids = [a.ticket_id, b.ticket_id, c.ticket_id]
    pg_before, redis_before = pg_state(conn), redis_state(store, [src, tgt], tids)

    done = merging.merge(conn, "+966553334444", "one@example.sa", "amal", store)

    assert (done["source"], done["target"]) == (src, tgt)
    assert done["tickets"] == [b.ticket_id, c.ticket_id] and done["tags_added"] == ["vip"]
    doc = customers.show(conn, tgt)
    assert {t["id"] for t in doc["tickets"]} == set(tids)
    assert doc["customer"]["tags"] == ["arabic", "vip"]
    assert store.r.hget(store.key("identity"), "phone:+966553334444") == tgt
    assert store.r.smembers(store.key("customer", src, "ids")) == set()
    assert store.get_ticket(c.ticket_id).customer_id == tgt
    assert store.r.zcard(store.key("customer", tgt, "tickets")) == 3
    assert json.loads(store.r.hget(store.key("customer", tgt), "tags")) == ["arabic", "vip"]
    # live intake: the phone's next message is the target's
    later = runtime.process([web("a third question", phone="0553334444")]).results[0]
    assert later.customer_id == tgt
    store.r.zrem(store.key("customer", tgt, "tickets"), later.ticket_id)  # compare the rest

    undone = merging.unmerge(conn, done["merge"], "boss", store)

    assert undone["tickets"] == [b.ticket_id, c.ticket_id] and undone["identities"] == 1
    assert pg_state(conn) == pg_before
    assert redis_state(store, [src, tgt], tids) == redis_before
    assert conn.execute("SELECT undone_at FROM customer_merges").fetchone()[0] is not None
    with pytest.raises(RecordRefused):
        merging.unmerge(conn, done["merge"], "boss", store)
    with pytest.raises(UnknownCustomer):
        merging.unmerge(conn, 999, "boss", store)
    with pytest.raises(RecordRefused):
        merging.merge(conn, src, src, "amal", store)
    audit = conn.execute(
        "SELECT actor, action, subject, detail FROM audit"
        " WHERE action IN ('merge', 'unmerge') ORDER BY id"
    ).fetchall()
    assert [(x, y, z) for x, y, z, _ in audit] == [("amal", "merge", src), ("boss", "unmerge", src)]
    assert audit[0][3]["merge"] == done["merge"] and audit[0][3]["identities"] == 1
    assert "553334444" not in json.dumps(audit)  # counts, never the identity itself


def test_merge_into_a_customer_redis_no_longer_holds_loads_it(
    conn: psycopg.Connection[Any], runtime: Runtime
) -> None:
    store = runtime.store
    hot = runtime.process([web("hello", email="hot@example.sa")]).results[0]
    mirror(conn, store, hot.ticket_id)
    customer(
        conn,
        "C-00009000",
        "Cold Case",
        segment="business",
        tags=["investor"],
        identities=[("email", "cold@example.sa")],
    )
    merging.merge(conn, hot.customer_id, "C-00009000", "boss", store)
    loaded = store.get_customer("C-00009000")
    assert loaded is not None and loaded.name == "Cold Case"
    assert loaded.segment.value == "business" and loaded.tags == ["investor"]
    again = runtime.process([web("hello again", email="hot@example.sa")]).results[0]
    assert again.customer_id == "C-00009000"


def test_tags_go_to_postgres_and_to_the_hot_customer_and_are_audited(
    conn: psycopg.Connection[Any], runtime: Runtime
) -> None:
    store = runtime.store
    r = runtime.process([web("hello", email="t@example.sa")]).results[0]
    mirror(conn, store, r.ticket_id)
    assert customers.set_tags(conn, "t@example.sa", ["vip", "gov"], [], "amal", store) == [
        "vip",
        "gov",
    ]
    assert customers.set_tags(conn, r.customer_id, ["press"], ["vip"], "sara", store) == [
        "gov",
        "press",
    ]
    assert conn.execute("SELECT tags FROM customers WHERE id = %s", (r.customer_id,)).fetchone()[
        0
    ] == ["gov", "press"]
    assert store.get_customer(r.customer_id).tags == ["gov", "press"]
    audit = conn.execute("SELECT actor, detail FROM audit WHERE action = 'tag' ORDER BY id")
    assert audit.fetchall() == [
        ("amal", {"added": ["vip", "gov"], "removed": []}),
        ("sara", {"added": ["press"], "removed": ["vip"]}),
    ]
    with pytest.raises(RecordRefused):
        customers.set_tags(conn, r.customer_id, ["two words"], [], "amal", store)


def test_retention_erases_only_tickets_closed_before_the_cutoff(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    old = now - timedelta(days=3 * 365 + 30)
    archive = Archive(tmp_path)
    raw_old, raw_new = archive.put(b"old raw mail"), archive.put(b"new raw mail")
    # gone: every ticket old and closed
    customer(
        conn, "C-00000010", "Old Person", created=old, identities=[("email", "old@example.sa")]
    )
    ticket(
        conn,
        "OD-2023-000001",
        "C-00000010",
        "general",
        "closed",
        created=old,
        closed=old + timedelta(days=2),
        subject="old question",
    )
    message(conn, "OD-2023-000001", "old text", author="Old Person", raw_ref=raw_old)
    # mixed: an old resolved ticket goes, the recent one and the old open one stay
    customer(
        conn, "C-00000011", "Mixed Person", created=old, identities=[("email", "mixed@example.sa")]
    )
    ticket(
        conn,
        "OD-2023-000002",
        "C-00000011",
        "cr",
        "resolved",
        created=old,
        resolved=old + timedelta(days=1),
        subject="old resolved",
    )
    ticket(
        conn,
        "OD-2026-000100",
        "C-00000011",
        "cr",
        "closed",
        created=now - timedelta(days=30),
        closed=now - timedelta(days=20),
        subject="recent",
    )
    message(conn, "OD-2026-000100", "recent text", author="Mixed Person", raw_ref=raw_new)
    ticket(conn, "OD-2023-000003", "C-00000011", "cr", "open", created=old, subject="still open")
    before = counts_by_queue(conn)

    dry = apply_retention(conn, 3, state_dir=tmp_path, now=now, dry_run=True)
    assert (dry["tickets"], dry["customers"]) == (2, 1)
    assert conn.execute("SELECT count(*) FROM tickets WHERE erased_at IS NOT NULL").fetchone() == (
        0,
    )
    first = apply_retention(conn, 3, state_dir=tmp_path, now=now, limit=1)
    assert (first["tickets"], first["more"]) == (1, True)  # the oldest: Mixed's resolved one
    assert first["customers"] == 0  # Old's ticket is still to come
    done = apply_retention(conn, 3, state_dir=tmp_path, now=now, limit=1)
    assert (done["tickets"], done["more"], done["customers"], done["files"]) == (1, False, 1, 1)

    subjects = dict(conn.execute("SELECT id, subject FROM tickets").fetchall())
    assert subjects == {
        "OD-2023-000001": "",
        "OD-2023-000002": "",
        "OD-2026-000100": "recent",
        "OD-2023-000003": "still open",
    }
    people = dict(conn.execute("SELECT id, name FROM customers").fetchall())
    assert people == {"C-00000010": "", "C-00000011": "Mixed Person"}
    idents = conn.execute("SELECT value FROM identities").fetchall()
    assert idents == [("mixed@example.sa",)]
    assert archive.get(raw_old) is None and archive.get(raw_new) == b"new raw mail"
    assert counts_by_queue(conn) == before
    assert apply_retention(conn, 3, state_dir=tmp_path, now=now)["tickets"] == 0
    rows = conn.execute("SELECT actor, detail FROM audit WHERE action = 'retention'").fetchall()
    assert [(actor, d["tickets"]) for actor, d in rows] == [("retention", 1)] * 2


def test_merge_records_what_only_redis_holds_yet_and_leaves_cold_customers_cold(
    conn: psycopg.Connection[Any], runtime: Runtime
) -> None:
    store = runtime.store
    src = runtime.process([web("hello", email="s@example.sa", phone="0557776666")]).results[0]
    mirror(conn, store, src.ticket_id)
    # the writer has not caught up with the phone and a new ticket: Redis only (a web form
    # links no new identity onto a customer that exists, so the phone came with the first)
    conn.execute("DELETE FROM identities WHERE kind = 'phone' AND value = '+966557776666'")
    fresh = runtime.process([web("more", email="s@example.sa")]).results[0]
    assert fresh.customer_id == src.customer_id
    customer(conn, "C-00008000", "Target", identities=[("email", "t@example.sa")])

    done = merging.merge(conn, src.customer_id, "C-00008000", "amal", store)

    assert done["tickets"] == [src.ticket_id, fresh.ticket_id] and done["identities"] == 2
    (moved,) = conn.execute("SELECT moved FROM customer_merges").fetchone()
    assert moved["identities"] == ["email:s@example.sa", "phone:+966557776666"]
    assert store.r.hget(store.key("identity"), "phone:+966557776666") == "C-00008000"
    assert store.get_ticket(fresh.ticket_id).customer_id == "C-00008000"
    merging.unmerge(conn, done["merge"], "amal", store)
    assert store.r.hget(store.key("identity"), "phone:+966557776666") == src.customer_id
    assert store.get_ticket(fresh.ticket_id).customer_id == src.customer_id

    # two customers Redis does not hold: the merge writes nothing there
    customer(conn, "C-00008001", "Cold A", identities=[("email", "ca@example.sa")])
    customer(conn, "C-00008002", "Cold B", identities=[("email", "cb@example.sa")])
    merging.merge(conn, "C-00008001", "C-00008002", "amal", store)
    assert not store.r.exists(store.key("customer", "C-00008002"))
    assert store.r.hget(store.key("identity"), "email:ca@example.sa") is None


def test_the_records_writer_keeps_tags_merges_and_erasures_as_made(
    conn: psycopg.Connection[Any], runtime: Runtime, pg_url: str, tmp_path: Path
) -> None:
    """With the real outbox writer in between: later events of the same hot tickets write
    Redis's snapshots again, and they agree with what was done here."""
    import asyncio

    from omnidesk.db.writer import RecordWriter

    store = runtime.store
    writer = RecordWriter(store, pg_url)
    x1 = runtime.process([web("first", email="x@example.sa", name="Xena")]).results[0]
    x2 = runtime.process([web("second", email="x@example.sa")]).results[0]
    y = runtime.process([web("third", phone="0551231234", name="Yara")]).results[0]
    asyncio.run(writer.drain())
    x = x1.customer_id
    assert {t["id"] for t in customers.show(conn, "x@example.sa")["tickets"]} == {
        x1.ticket_id,
        x2.ticket_id,
    }
    customers.set_tags(conn, x, ["vip"], [], "amal", store)
    merged = merging.merge(conn, y.customer_id, x, "amal", store)
    for tid in (x1.ticket_id, y.ticket_id):
        store.set_status(tid, "open", actor="amal")  # new events: the writer writes again
    asyncio.run(writer.drain())
    doc = customers.show(conn, x)
    assert doc["customer"]["tags"] == ["vip"]
    assert {t["id"] for t in doc["tickets"]} == {x1.ticket_id, x2.ticket_id, y.ticket_id}
    assert merged["tickets"] == [y.ticket_id]

    # still in the stream when the erasure runs: written after it
    store.add_event("csat", x2.ticket_id, actor="customer", score="5", comment="Xena: great")
    erasure.erase_customer(conn, x, "boss", store, tmp_path / "state")
    conn.execute("UPDATE tickets SET subject = 'Xena again' WHERE id = %s", (x2.ticket_id,))
    store.set_status(x2.ticket_id, "resolved", actor="amal")
    asyncio.run(writer.drain())
    assert conn.execute(
        "SELECT name FROM customers WHERE id = ANY(%s)", ([x, y.customer_id],)
    ).fetchall() == [("",), ("",)]
    texts = conn.execute(
        "SELECT m.body, m.author, t.subject, t.preview FROM messages m"
        " JOIN tickets t ON t.id = m.ticket_id"
    ).fetchall()
    assert texts and all(row == ("", "", "", "") for row in texts)
    assert conn.execute("SELECT count(*) FROM identities").fetchone() == (0,)
    (csat,) = conn.execute("SELECT data FROM events WHERE type = 'csat'").fetchone()
    assert csat == {"score": "5", "ts": csat["ts"]}  # the comment never reached the record
    assert "Xena" not in json.dumps(conn.execute("SELECT * FROM tickets").fetchall(), default=str)


def test_the_schema_strips_the_same_event_fields_as_erasure(
    conn: psycopg.Connection[Any],
) -> None:
    (body,) = conn.execute(
        "SELECT pg_get_functiondef('od_erased_ticket_event'::regproc)"
    ).fetchone()
    (when,) = conn.execute(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'events_of_erased_tickets'"
    ).fetchone()
    for field in PERSONAL_EVENT_FIELDS:
        assert f"'{field}'" in body and f"'{field}'" in when, field
