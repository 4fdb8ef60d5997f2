"""Search over every ticket PostgreSQL holds, open or closed: by ticket id, customer
identity, commercial registration number, and free text in Arabic and English.

One query string is read every way that fits it. The exact readings (an id, an e-mail, a
phone, a handle, a CR number) are index lookups and come first; free text goes through the
GIN index on `messages.search` (see `omnidesk.db.searchtext`) and is ranked with `ts_rank`.
Every reading is scoped by the caller's queues inside SQL, so a limit never hides a hit the
caller may see behind ones it may not.

A free-text query that matches very many messages ranks the first MAX_CANDIDATES of them
(within the caller's queues), not all: that keeps a search under a fixed cost however
common its words, and a more specific query narrows the set. When a query is a ticket id,
an e-mail, a phone or a number and that reading finds tickets, its words are not searched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from connectors.base_normalize import e164
from omnidesk.db.searchtext import MAX_QUERY_CHARS, query_forms, search_query, word_matches
from omnidesk.errors import PermanentError
from omnidesk.text import display_safe

MAX_CANDIDATES = 500
MAX_LIMIT = 100
SNIPPET_CHARS = 160

_TICKET_ID = re.compile(r"od-\d{4}-\d{1,12}", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_HANDLE = re.compile(r"@?([A-Za-z0-9_]{1,30})")
_DIGITS = str.maketrans(
    {chr(0x0660 + i): str(i) for i in range(10)} | {chr(0x06F0 + i): str(i) for i in range(10)}
)
_PHONEISH = re.compile(r"\+?[0-9][0-9 ()\-.]{5,30}")
# An original word of a message (with its tashkeel and tatweel), for snippets.
_ORIGINAL_WORD = re.compile(r"[^\W_][\w\u064B-\u065F\u0670\u0640]*")


class BadQuery(PermanentError):
    """An empty or oversized search: the CLI says so and exits 2, the API answers 400."""


@dataclass(frozen=True)
class Hit:
    ticket_id: str
    queue: str
    status: str
    channel: str
    customer_id: str
    subject: str
    created_at: datetime
    matched: str  # id, email, phone, handle, cr_number, text
    rank: float
    snippet: str  # original text around the match
    highlights: list[tuple[int, int]]  # [start, end) of matched words within the snippet

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket_id,
            "queue": self.queue,
            "status": self.status,
            "channel": self.channel,
            "customer": self.customer_id,
            "subject": self.subject,
            "created_at": self.created_at.isoformat(),
            "matched": self.matched,
            "rank": round(self.rank, 4),
            "snippet": self.snippet,
            "highlights": [list(h) for h in self.highlights],
        }


def check_query(query: str) -> str:
    text = query.strip()
    if not text:
        raise BadQuery("the search query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise BadQuery(f"the search query is over {MAX_QUERY_CHARS} characters")
    return text


def identity_keys(query: str) -> list[tuple[str, str]]:
    """The (kind, value) pairs a query could be, normalized as intake normalizes them."""
    text = query.strip()
    keys: list[tuple[str, str]] = []
    if _EMAIL.fullmatch(text):
        keys.append(("email", text.lower()))
        return keys
    digits = text.translate(_DIGITS)
    if _PHONEISH.fullmatch(digits):
        phone = e164(digits, "SA")
        if phone:
            keys += [("phone", phone), ("whatsapp", phone.lstrip("+"))]
        bare = re.sub(r"[^0-9]", "", digits)
        keys += [("telegram", bare), ("twitter", bare), ("whatsapp", bare)]
    handle = _HANDLE.fullmatch(text)
    if handle and not text.isdigit():
        keys.append(("twitter_handle", handle.group(1).lower()))
    return list(dict.fromkeys(keys))


def _structured(query: str) -> bool:
    """A ticket id, an e-mail, a phone or a number: when such a reading finds tickets, the
    words of the query ("cust", "example", "sa") would only add noise, and cost."""
    return bool(
        _TICKET_ID.fullmatch(query)
        or _EMAIL.fullmatch(query)
        or _PHONEISH.fullmatch(query.translate(_DIGITS))
    )


def cr_number(query: str) -> str | None:
    digits = query.strip().translate(_DIGITS)
    return digits if len(digits) == 10 and digits.isdigit() else None


_TICKET_COLUMNS = "t.id, t.queue, t.status, t.channel, t.customer_id, t.subject, t.created_at"
_SCOPE = "(%(queues)s::text[] IS NULL OR t.queue = ANY(%(queues)s::text[]))"


def _rows(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> list[Any]:
    """Planned for its own parameters every time, never as a prepared generic plan: whether
    the GIN index or a scan is cheaper depends on how common the words are, and whether a
    queue filter applies at all depends on `queues` being NULL."""
    return conn.execute(sql, params, prepare=False).fetchall()


def _exact(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> list[Hit]:
    hits: list[Hit] = []
    if _TICKET_ID.fullmatch(query):
        rows = _rows(
            conn,
            f"SELECT {_TICKET_COLUMNS}, t.preview FROM tickets t WHERE t.id = %(id)s AND {_SCOPE}",
            params | {"id": query.upper()},
        )
        hits += [_exact_hit(r, "id") for r in rows]
        return hits
    keys = identity_keys(query)
    if keys:
        rows = _rows(
            conn,
            f"""SELECT DISTINCT ON (t.created_at, t.id) {_TICKET_COLUMNS}, t.preview, i.kind
                FROM identities i JOIN tickets t ON t.customer_id = i.customer_id
                WHERE (i.kind, i.value) IN (
                    SELECT * FROM unnest(%(kinds)s::text[], %(values)s::text[])
                ) AND {_SCOPE}
                ORDER BY t.created_at DESC, t.id LIMIT %(limit)s""",
            params | {"kinds": [k for k, _ in keys], "values": [v for _, v in keys]},
        )  # fmt: skip
        hits += [_exact_hit(r[:-1], _identity_label(r[-1])) for r in rows]
    cr = cr_number(query)
    if cr:
        rows = _rows(
            conn,
            f"""SELECT {_TICKET_COLUMNS}, t.preview FROM tickets t
                WHERE t.cr_number = %(cr)s AND {_SCOPE}
                ORDER BY t.created_at DESC LIMIT %(limit)s""",
            params | {"cr": cr},
        )
        hits += [_exact_hit(r, "cr_number") for r in rows]
    return hits


def _identity_label(kind: str) -> str:
    return {"twitter_handle": "handle", "whatsapp": "phone"}.get(kind, kind)


def _exact_hit(row: tuple[Any, ...], matched: str) -> Hit:
    tid, queue, status, channel, customer, subject, created, preview = row
    snippet = " ".join(display_safe(preview or subject or "")[:SNIPPET_CHARS].split())
    return Hit(tid, queue, status, channel, customer, subject, created, matched, 1.0, snippet, [])


_TEXT_SQL = f"""
WITH candidates AS (
    SELECT m.ticket_id, m.id, ts_rank(m.search, q.q) AS rank
    FROM (SELECT to_tsquery('simple', %(tsq)s) AS q) q,
         messages m JOIN tickets t ON t.id = m.ticket_id
    WHERE m.search @@ q.q AND {_SCOPE}
    LIMIT %(cap)s
), best AS (
    SELECT DISTINCT ON (ticket_id) ticket_id, id, rank
    FROM candidates ORDER BY ticket_id, rank DESC
), top AS (  -- the page first, so only its rows are joined to their ticket and text
    SELECT * FROM best ORDER BY rank DESC, ticket_id DESC LIMIT %(limit)s
)
SELECT {_TICKET_COLUMNS}, m.subject, m.body, top.rank
FROM top JOIN tickets t ON t.id = top.ticket_id JOIN messages m ON m.id = top.id
ORDER BY top.rank DESC, top.ticket_id DESC
"""


def _text(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> list[Hit]:
    tsq = search_query(query)
    if not tsq:
        return []
    rows = _rows(conn, _TEXT_SQL, params | {"tsq": tsq, "cap": MAX_CANDIDATES})
    wanted = query_forms(query)
    hits = []
    for tid, queue, status, channel, customer, subject, created, msg_subject, body, rank in rows:
        snippet, marks = snippet_of(body or msg_subject or "", wanted)
        if not marks and msg_subject:
            snippet, marks = snippet_of(msg_subject, wanted)
        ticket = (tid, queue, status, channel, customer, subject, created)
        hits.append(Hit(*ticket, "text", rank, snippet, marks))
    return hits


Spans = list[tuple[int, int]]


def snippet_of(text: str, wanted: set[str], width: int = SNIPPET_CHARS) -> tuple[str, Spans]:
    """The original text around its first matching word, and where the matches are in it.
    Made display-safe first, so the marks still point at the words after the API's own pass."""
    text = display_safe(text)
    spans = [m.span() for m in _ORIGINAL_WORD.finditer(text) if word_matches(m.group(), wanted)]
    if not spans:
        return " ".join(text[:width].split()), []
    first = spans[0][0]
    start = max(0, first - width // 3)
    if start:  # begin at a word
        space = text.rfind(" ", 0, start)
        start = space + 1 if space >= 0 and first - space < width // 2 else start
    end = min(len(text), start + width)
    raw = text[start:end]
    # newlines and runs of spaces become one space; keep a map so the marks stay right
    out: list[str] = []
    where: dict[int, int] = {}
    for i, ch in enumerate(raw):
        if ch.isspace():
            if out and out[-1] == " ":
                where[i] = len(out) - 1
                continue
            ch = " "
        where[i] = len(out)
        out.append(ch)
    where[len(raw)] = len(out)
    marks = [
        (where[a - start], where[b - start])
        for a, b in spans
        if a >= start and b <= end
    ]  # fmt: skip
    prefix = "…" if start else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix)
    return prefix + "".join(out) + suffix, [(a + shift, b + shift) for a, b in marks]


def search(
    conn: psycopg.Connection[Any],
    query: str,
    *,
    queues: list[str] | None,
    limit: int = 20,
) -> list[Hit]:
    """Tickets matching `query`, exact readings first, then free text by rank; only tickets
    in `queues` (None: every queue, for supervisors of everything and the operator)."""
    text = check_query(query)
    if queues is not None and not queues:
        return []
    limit = max(1, min(MAX_LIMIT, limit))
    params: dict[str, Any] = {"queues": queues, "limit": limit}
    hits = _exact(conn, text, params)
    if not (hits and _structured(text)) and len(hits) < limit:
        hits += _text(conn, text, params)
    unique: dict[str, Hit] = {}
    for hit in hits:  # a ticket once, by its first (most exact) reading
        unique.setdefault(hit.ticket_id, hit)
    return list(unique.values())[:limit]
