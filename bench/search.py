"""Benchmark: `omnidesk.db.search` over 1,000,000 tickets in PostgreSQL, against the same
queries run as plain ILIKE scans in the same run.

Seeding (honestly): tickets, customers, identities and 1.5 messages per ticket (Arabic or
English, 2 to 7 sentences from templates, with generated shop brands, people's names,
districts, products, amounts and dates) are generated in 2 processes and streamed with
COPY. Each message's `search` is filled as production fills it,
`to_tsvector('simple', search_document(subject, body))`: search_document runs in Python
(the generating processes), to_tsvector in PostgreSQL (INSERT ... SELECT from a staging
table). The secondary indexes of 0001 and 0002 are dropped during the load and rebuilt
after it with their own definitions, then the tables are analyzed.

The 200 searches are read back from the seeded data, each with the tickets it must find:
- a ticket id (typed in any case);
- a customer identity: an e-mail (any case) or a phone (E.164 or national digits);
- a commercial registration number;
- free text: a brand, a person's family name and one more word of a ticket's message
  (Arabic or English), so one ticket is expected; and a few broad one-word queries, where
  any hit will do.
Each is timed through `search()` (the code the CLI and the API run, with limit 20) and as
the naive scan (ILIKE '%...%' on the same columns, every word ANDed, LIMIT 20), one after
the other, alternating which goes first. Both must find the expected tickets. One JSON line
ends the run: {"tickets", "search_p50_ms", "search_p99_ms", "ilike_p50_ms", "ratio", ...}.

    python bench/search.py [--tickets 1000000] [--reuse] [--searches 200]

Kept whole though over 500 lines: a benchmark is read top to bottom as one script, its
seeding, its two sides and its checks together.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from multiprocessing import Pool
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg.conninfo import make_conninfo

from omnidesk.db.migrate import upgrade
from omnidesk.db.search import search
from omnidesk.db.searchtext import search_document

SERVER = os.environ.get("OMNIDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DBNAME = "od_bench_search"
QUEUES = ("general", "complaints", "cr", "licensing", "billing")
STATUSES = ("new", "open", "pending_customer", "resolved", "closed", "closed", "closed")
CHANNELS = ("email", "whatsapp", "web", "telegram", "twitter")
START = datetime(2025, 1, 1, tzinfo=UTC)
CHUNK = 20_000  # tickets per generated chunk

# ---------------------------------------------------------------- vocabulary

_AR_SYL = [
    "زا",
    "ري",
    "نو",
    "مل",
    "كا",
    "سو",
    "دي",
    "فر",
    "تا",
    "هي",
    "بو",
    "لا",
    "جي",
    "قم",
    "صا",
    "عر",
    "نا",
    "ود",
    "شي",
    "مي",
    "رو",
    "غا",
    "ثي",
    "حو",
]
_EN_SYL = [
    "zar",
    "rin",
    "nov",
    "mel",
    "kas",
    "sol",
    "dex",
    "fir",
    "tan",
    "hel",
    "bor",
    "lam",
    "jix",
    "qum",
    "sar",
    "ora",
    "nad",
    "vek",
]
AR_FIRST = [
    "محمد",
    "أحمد",
    "عبدالله",
    "خالد",
    "فهد",
    "سعود",
    "نورة",
    "سارة",
    "هند",
    "ريم",
    "عبدالرحمن",
    "فيصل",
    "تركي",
    "ماجد",
    "منى",
    "لطيفة",
    "ياسر",
    "سلمان",
    "نايف",
    "بندر",
    "عبير",
    "أمل",
    "هيفاء",
    "مشاعل",
    "وليد",
    "طارق",
]
AR_FAMILY = [
    "ال" + a + b
    for a in [
        "زهر",
        "قحط",
        "شمر",
        "غامد",
        "عتيب",
        "مطير",
        "حرب",
        "دوس",
        "سبيع",
        "رشيد",
        "عنز",
        "جهن",
    ]
    for b in ("ي", "اني", "ان", "ين", "وي")
] + [a + b + c for a in _AR_SYL[:12] for b in _AR_SYL[6:18] for c in ("ي", "ان")]
EN_FIRST = [
    "John",
    "Sarah",
    "Ahmed",
    "Maria",
    "David",
    "Fatima",
    "James",
    "Layla",
    "Omar",
    "Emily",
    "Noah",
    "Aisha",
]
EN_FAMILY = [a.capitalize() + b + c for a in _EN_SYL for b in _EN_SYL for c in ("son", "ley", "er")]
DISTRICTS = [
    "النسيم",
    "الملز",
    "العليا",
    "الروضة",
    "السلي",
    "النخيل",
    "الياسمين",
    "الربوة",
    "العزيزية",
    "الشفا",
    "المروج",
    "الحمراء",
    "الصفا",
    "الفيصلية",
    "الخالدية",
    "الشرفية",
    "البوادي",
    "الرحاب",
    "السلامة",
    "النزهة",
]
EN_DISTRICTS = [
    "Olaya",
    "Malaz",
    "Naseem",
    "Rawdah",
    "Yasmin",
    "Sulay",
    "Hamra",
    "Safa",
    "Nuzha",
    "Rehab",
]
PRODUCTS = [
    "الأجهزة الكهربائية",
    "المواد الغذائية",
    "الأدوية",
    "قطع الغيار",
    "الملابس",
    "العطور",
    "الإطارات",
]
EN_PRODUCTS = ["electronics", "groceries", "medicine", "spare parts", "clothes", "perfume", "tyres"]
ISSUES = [
    "رفع الأسعار",
    "الغش التجاري",
    "سوء المعاملة",
    "عدم الالتزام بالضمان",
    "بيع منتجات منتهية الصلاحية",
    "عدم إصدار فاتورة",
    "الإعلانات المضللة",
]
EN_ISSUES = [
    "overcharging",
    "counterfeit goods",
    "rude staff",
    "refusing the warranty",
    "expired products",
    "no invoice",
    "misleading adverts",
]


def brands(rnd: random.Random, syllables: list[str], n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rnd.choice(syllables) for _ in range(rnd.choice((3, 3, 4)))))
    return sorted(out)


AR_BRANDS = brands(random.Random(1), _AR_SYL, 12_000)
EN_BRANDS = [b.capitalize() for b in brands(random.Random(2), _EN_SYL, 8_000)]

AR_SENTENCES = [
    "أود تقديم شكوى ضد {shop} في حي {district} بسبب {issue}.",
    "تقدمت بعدة شكاوى سابقة ضد {shop} ولم يتم الرد عليها حتى الآن.",
    "المحلات في حي {district} لا تلتزم بالأسعار المعلنة، ومنها {shop}.",
    "رقم الطلب الخاص بي هو {num} وأرجو متابعته.",
    "قمت بشراء {product} من {shop} وتبين أنها مغشوشة.",
    "الموظف {person} لم يقدم المساعدة المطلوبة رغم مراجعتي أكثر من مرة.",
    "نرجو التكرم بالنظر في المخالفات المتكررة من قبل {shop}.",
    "تم رفض طلب الترخيص دون توضيح الأسباب.",
    "أسعار {product} ارتفعت بشكل كبير في أسواق حي {district}.",
    "تم بيع منتج منتهي الصلاحية لي في {shop} بتاريخ {date}.",
    "أطالب باسترجاع المبلغ المدفوع وقدره {amount} ريال.",
    "شكرا لكم على سرعة الاستجابة والتعاون.",
    "يوجد تأخير كبير في توصيل الطلبات من المتجر الإلكتروني {shop}.",
    "لدي استفسار عن رسوم الخدمات الإلكترونية وتجديد السجل التجاري.",
    "مقدم الطلب: {person}، للتواصل على الرقم المسجل لديكم.",
]
EN_SENTENCES = [
    "I would like to file a complaint against {shop} in {district} about {issue}.",
    "I have sent several complaints about {shop} and nobody has answered yet.",
    "Shops in {district} do not respect the posted prices, {shop} among them.",
    "My order number is {num}, please follow it up.",
    "I bought {product} from {shop} and they turned out to be fake.",
    "Your employee {person} did not help me although I came back several times.",
    "Please look into the repeated violations by {shop}.",
    "My licence application was rejected without any reason given.",
    "Prices of {product} went up sharply in the {district} markets.",
    "{shop} sold me an expired product on {date}.",
    "I am asking for a refund of the {amount} riyals I paid.",
    "Thank you for the quick response and your help.",
    "Deliveries from the {shop} online store are badly delayed.",
    "I have a question about e-service fees and renewing my commercial registration.",
    "Submitted by {person}; please call me on the number you have.",
]
AR_SHOP = ("محل {b}", "متجر {b}", "شركة {b}", "مؤسسة {b}", "محلات {b}")
EN_SHOP = ("{b} store", "{b} shop", "{b} Trading", "{b} Co.", "the {b} outlet")
AR_SUBJECTS = ("شكوى", "استفسار", "طلب ترخيص", "بلاغ مخالفة", "")
EN_SUBJECTS = ("Complaint", "Question", "Licence request", "Violation report", "")


def message(rnd: random.Random, arabic: bool, brand: str, family: str) -> tuple[str, str]:
    """(subject, body): 2 to 7 sentences; the first names the ticket's brand and person."""
    sentences, shop, first, districts, products, issues, subjects = (
        (AR_SENTENCES, AR_SHOP, AR_FIRST, DISTRICTS, PRODUCTS, ISSUES, AR_SUBJECTS)
        if arabic
        else (EN_SENTENCES, EN_SHOP, EN_FIRST, EN_DISTRICTS, EN_PRODUCTS, EN_ISSUES, EN_SUBJECTS)
    )
    when = START + timedelta(days=rnd.randrange(540))
    slots = {
        "shop": rnd.choice(shop).format(b=brand),
        "district": rnd.choice(districts),
        "issue": rnd.choice(issues),
        "num": str(rnd.randrange(10**6, 10**7)),
        "product": rnd.choice(products),
        "person": f"{rnd.choice(first)} {family}",
        "date": when.strftime("%Y-%m-%d"),
        "amount": str(rnd.randrange(20, 20000)),
    }
    picked = [sentences[0], sentences[14], *rnd.sample(sentences[1:14], rnd.randrange(0, 6))]
    rnd.shuffle(picked)
    body = " ".join(s.format(**slots) for s in picked)
    return rnd.choice(subjects), body


# ---------------------------------------------------------------- generation


def _esc(value: Any) -> str:
    if value is None:
        return "\\N"
    s = str(value)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def _line(*values: Any) -> str:
    return "\t".join(_esc(v) for v in values) + "\n"


def ticket_id(i: int, n: int) -> str:
    """The first half of the tickets are 2025's, the rest 2026's."""
    half = (n + 1) // 2
    return f"OD-2025-{i + 1:06d}" if i < half else f"OD-2026-{i - half + 1:06d}"


def customer_of(i: int) -> int:
    return i // 2  # two tickets per customer


def phone_of(c: int) -> str:
    """A valid Saudi mobile number, distinct per customer."""
    return f"+9665{'034569'[c % 6]}{(c * 104729) % 10**7:07d}"


def email_of(c: int) -> str:
    return f"cust{c}@mail{c % 97}.example.sa"


def cr_of(c: int) -> str | None:
    return f"7{(c * 7777) % 10**9:09d}" if c % 5 == 0 else None


def brand_and_family(i: int, arabic: bool) -> tuple[str, str]:
    rnd = random.Random(i * 31 + 7)
    if arabic:
        return rnd.choice(AR_BRANDS), rnd.choice(AR_FAMILY)
    return rnd.choice(EN_BRANDS), rnd.choice(EN_FAMILY)


def chunk(args: tuple[int, int, int]) -> tuple[str, str, str, str]:
    """COPY text for tickets [lo, hi): (customers, identities, tickets, staged messages)."""
    lo, hi, n = args
    rnd = random.Random(lo)
    customers, identities, tickets, messages = [], [], [], []
    for i in range(lo, hi):
        c = customer_of(i)
        created = START + timedelta(seconds=int(i * 540 * 86400 / n) + rnd.randrange(3600))
        if i % 2 == 0:  # the customer's first ticket writes it
            customers.append(_line(f"C-{c:08d}", "", created.isoformat()))
            identities.append(_line("email", email_of(c), f"C-{c:08d}"))
            if c % 3:
                identities.append(_line("phone", phone_of(c), f"C-{c:08d}"))
        arabic = rnd.random() < 0.6
        brand, family = brand_and_family(i, arabic)
        tid = ticket_id(i, n)
        subject, body = message(rnd, arabic, brand, family)
        status = rnd.choice(STATUSES)
        tickets.append(
            _line(tid, f"C-{c:08d}", rnd.choice(CHANNELS), rnd.choice(QUEUES), status,
                  subject, body[:140], "ar" if arabic else "en", cr_of(c), created.isoformat(),
                  created.isoformat(), status not in ("resolved", "closed"))
        )  # fmt: skip
        texts = [(subject, body)]
        if rnd.random() < 0.5:  # a follow-up: same shop and person, other sentences
            texts.append(("", message(rnd, arabic, brand, family)[1]))
        for k, (subj, text) in enumerate(texts):
            at = (created + timedelta(hours=k * 5)).isoformat()
            messages.append(
                _line(f"{tid}-{k}", tid, "in", "email", f"{tid}-{k}", at, subj, text,
                      search_document(subj, text))
            )  # fmt: skip
    return "".join(customers), "".join(identities), "".join(tickets), "".join(messages)


# ---------------------------------------------------------------- seeding


def db_url(name: str) -> str:
    return make_conninfo(SERVER, dbname=name)


def seeded_count(name: str) -> int | None:
    try:
        with psycopg.connect(db_url(name), connect_timeout=5) as conn:
            row = conn.execute("SELECT tickets FROM bench_meta").fetchone()
            return int(row[0]) if row else None
    except psycopg.Error:
        return None


def secondary_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(name, definition) of the non-unique indexes of tickets and messages."""
    rows = conn.execute(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
           JOIN pg_class c ON c.relname = i.indexname JOIN pg_index x ON x.indexrelid = c.oid
           WHERE i.tablename IN ('tickets', 'messages', 'identities') AND NOT x.indisunique"""
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _fill_messages(db: str, half: int) -> None:
    """Half of the staged messages into `messages`, to_tsvector in PostgreSQL (2 cores)."""
    with psycopg.connect(db_url(db), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO messages (id, ticket_id, direction, channel, external_id, created_at,"
            " subject, body, search) SELECT id, ticket_id, direction, channel, external_id,"
            " created_at, subject, body, to_tsvector('simple', doc) FROM staged"
            " WHERE abs(hashtext(id)) %% 2 = %s",
            (half,),
        )


def seed(n: int, db: str, log: Any) -> float:
    began = time.monotonic()
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{db}"')
    upgrade(db_url(db))
    with psycopg.connect(db_url(db), autocommit=True) as conn:
        indexes = secondary_indexes(conn)
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("ALTER TABLE messages DROP CONSTRAINT messages_ticket_id_fkey")
        conn.execute(
            "CREATE UNLOGGED TABLE staged (id text, ticket_id text, direction text,"
            " channel text, external_id text, created_at timestamptz, subject text,"
            " body text, doc text)"
        )
        spans = [(lo, min(n, lo + CHUNK), n) for lo in range(0, n, CHUNK)]
        with Pool(2) as pool:
            for k, (cust, ident, tick, msgs) in enumerate(pool.imap(chunk, spans)):
                with conn.transaction():
                    cur = conn.cursor()
                    with cur.copy("COPY customers (id, name, created_at) FROM STDIN") as cp:
                        cp.write(cust)
                    with cur.copy("COPY identities (kind, value, customer_id) FROM STDIN") as cp:
                        cp.write(ident)
                    with cur.copy(
                        "COPY tickets (id, customer_id, channel, queue, status, subject,"
                        " preview, language, cr_number, created_at, updated_at, hot) FROM STDIN"
                    ) as cp:
                        cp.write(tick)
                    with cur.copy("COPY staged FROM STDIN") as cp:
                        cp.write(msgs)
                if k % 10 == 9:
                    log(f"  {spans[k][1]:,} tickets generated ({time.monotonic() - began:.0f} s)")
        log(f"  to_tsvector into messages ({time.monotonic() - began:.0f} s)")
        halves = [threading.Thread(target=_fill_messages, args=(db, k)) for k in (0, 1)]
        for t in halves:
            t.start()
        for t in halves:
            t.join()
        conn.execute("DROP TABLE staged")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        for name, definition in indexes:
            log(f"  index {name} ({time.monotonic() - began:.0f} s)")
            conn.execute(definition)
        conn.execute(
            "ALTER TABLE messages ADD CONSTRAINT messages_ticket_id_fkey"
            " FOREIGN KEY (ticket_id) REFERENCES tickets (id)"
        )
        conn.execute("VACUUM ANALYZE")
        conn.execute("CREATE TABLE bench_meta (tickets int)")
        conn.execute("INSERT INTO bench_meta VALUES (%s)", (n,))
    return time.monotonic() - began


# ---------------------------------------------------------------- queries

Query = dict[str, Any]  # kind, q, queues, expect (ticket ids, or [] for any hit), ilike


def _words(text: str) -> list[str]:
    return [w.strip(".,;:،") for w in text.split()]


def plan(conn: psycopg.Connection[Any], n: int, count: int, rnd: random.Random) -> list[Query]:
    """The searches, each read from a ticket picked at random, with what it must find."""
    kinds = ["id"] * 5 + ["email", "phone"] * 3 + ["cr"] * 2 + ["text"] * 8 + ["broad"]
    queries: list[Query] = []
    while len(queries) < count:
        kind = kinds[len(queries) % len(kinds)]
        i = rnd.randrange(n)
        tid = ticket_id(i, n)
        row = conn.execute(
            "SELECT t.customer_id, t.queue, t.cr_number, m.body, t.language FROM tickets t"
            " JOIN messages m ON m.id = t.id || '-0' WHERE t.id = %s",
            (tid,),
        ).fetchone()
        if row is None:
            continue
        customer, queue, cr, body, language = row
        scoped = [queue, rnd.choice(QUEUES)] if rnd.random() < 0.25 else None
        q: Query = {"kind": kind, "queues": scoped, "expect": [tid]}
        if kind == "id":
            q["q"] = tid.lower() if rnd.random() < 0.3 else tid
            q["ilike"] = ("SELECT t.id FROM tickets t WHERE t.id ILIKE %(p0)s", [q["q"]])
        elif kind in ("email", "phone"):
            ident = conn.execute(
                "SELECT kind, value FROM identities WHERE customer_id = %s AND kind = %s",
                (customer, kind),
            ).fetchone()
            if ident is None:
                continue
            value = ident[1]
            if kind == "email":
                typed = value.upper() if rnd.random() < 0.3 else value
            else:
                typed = value if rnd.random() < 0.5 else value[4:]  # +9665... or 5...
            q["q"] = typed
            q["ilike"] = (
                "SELECT t.id FROM identities i JOIN tickets t ON t.customer_id = i.customer_id"
                " WHERE i.value ILIKE %(p0)s",
                [typed],
            )
        elif kind == "cr":
            if not cr:
                continue
            q["q"] = cr
            q["ilike"] = ("SELECT t.id FROM tickets t WHERE t.cr_number ILIKE %(p0)s", [cr])
        else:
            brand, family = brand_and_family(i, language == "ar")
            if kind == "broad":
                word = rnd.choice([w for w in _words(body) if len(w) >= 5] or [brand])
                terms = [word]
                q["expect"] = []
            else:
                others = [w for w in _words(body) if len(w) >= 4 and w not in (brand, family)]
                word = rnd.choice(others)
                if word.startswith("ال") and len(word) > 4:
                    word = word[2:]  # typed without the article
                terms = [word, brand, family]
            q["q"] = " ".join(terms)
            where = " AND ".join(
                f"(m.body ILIKE %(p{k})s OR m.subject ILIKE %(p{k})s)" for k in range(len(terms))
            )
            q["ilike"] = (
                f"SELECT t.id FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE {where}",
                terms,
            )
        if scoped and queue not in scoped and kind != "broad":
            q["expect"], q["hidden"] = [], [tid]  # scoped away: must not be found
        queries.append(q)
    return queries


def run_ilike(conn: psycopg.Connection[Any], q: Query) -> list[str]:
    sql, terms = q["ilike"]
    params: dict[str, Any] = {f"p{k}": f"%{t}%" for k, t in enumerate(terms)}
    if q["queues"] is not None:
        sql += " AND t.queue = ANY(%(queues)s)"
        params["queues"] = q["queues"]
    return [r[0] for r in conn.execute(sql + " LIMIT 20", params).fetchall()]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return (time.perf_counter() - t0) * 1000, result


def check(q: Query, found: list[str], side: str) -> None:
    if q["expect"]:
        assert set(q["expect"]) <= set(found), f"{side} missed {q['expect']} for {q}: {found}"
    elif q["kind"] == "broad" and q["queues"] is None:
        assert found, f"{side} found nothing for {q}"
    assert not set(q.get("hidden", ())) & set(found), f"{side} found out of scope for {q}"


def bench(n: int, count: int, db: str, log: Any) -> dict[str, Any]:
    rnd = random.Random(13)
    search_ms: list[float] = []
    ilike_ms: list[float] = []
    by_kind: dict[str, list[float]] = {}
    with psycopg.connect(db_url(db), autocommit=True) as conn:
        queries = plan(conn, n, count + 10, rnd)
        for k, q in enumerate(queries):
            warmup = k < 10

            def s(q: Query = q) -> list[str]:
                return [h.ticket_id for h in search(conn, q["q"], queues=q["queues"], limit=20)]

            def i(q: Query = q) -> list[str]:
                return run_ilike(conn, q)

            if k % 2:
                (ms_s, found_s), (ms_i, found_i) = timed(s), timed(i)
            else:
                (ms_i, found_i), (ms_s, found_s) = timed(i), timed(s)
            check(q, found_s, "search")
            check(q, found_i, "ilike")
            if warmup:
                continue
            search_ms.append(ms_s)
            ilike_ms.append(ms_i)
            by_kind.setdefault(q["kind"], []).append(ms_s)
            if (k - 9) % 50 == 0:
                log(f"  {k - 9} searches: search p50 {statistics.median(search_ms):.1f} ms,"
                    f" ilike p50 {statistics.median(ilike_ms):.1f} ms")  # fmt: skip
    s50, i50 = statistics.median(search_ms), statistics.median(ilike_ms)
    return {
        "tickets": n,
        "search_p50_ms": round(s50, 2),
        "search_p99_ms": round(percentile(search_ms, 99), 2),
        "ilike_p50_ms": round(i50, 2),
        "ratio": round(i50 / s50, 1),
        "searches": len(search_ms),
        "ilike_p99_ms": round(percentile(ilike_ms, 99), 2),
        "search_p50_ms_by_kind": {
            k: round(statistics.median(v), 2) for k, v in sorted(by_kind.items())
        },
        "search_max_ms_by_kind": {k: round(max(v), 2) for k, v in sorted(by_kind.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="keep a database seeded as asked")
    parser.add_argument("--db", default=DBNAME, help=f"the database (default {DBNAME})")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    db = args.db

    def log(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    seed_s = 0.0
    if args.reuse and seeded_count(db) == args.tickets:
        log(f"reusing {db} ({args.tickets:,} tickets)")
    else:
        log(f"seeding {args.tickets:,} tickets into {db}")
        seed_s = seed(args.tickets, db, log)
    with psycopg.connect(db_url(db)) as conn:
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    log(f"{messages:,} messages; timing {args.searches} searches")
    figures = bench(args.tickets, args.searches, db, log)
    figures |= {"messages": messages, "seed_s": round(seed_s, 1)}
    if args.drop:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
