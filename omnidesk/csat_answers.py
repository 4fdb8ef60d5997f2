"""Survey answers as they come in: a button press (Telegram callback data, a WhatsApp reply)
or the /csat page's POST, recorded once per ticket (lua/csat.lua: HSETNX, first answer wins).

Intake needs it (`Runtime.read` takes an answer out before it could open a ticket) and so
does the agents' /csat page, so it sits in the core; the agents' survey (`agents/csat.py`)
sends the questions.

    P:csat:<token>   hash  ticket, created_ms (expires after 30 days)
    P:ticket:<id>    csat_token, csat_score, csat_comment, csat_at
"""

from __future__ import annotations

import logging
import re
import time
from typing import Literal

from omnidesk.events import EventType
from omnidesk.model import Inbound, utcnow
from omnidesk.replies import text, text_or_none
from omnidesk.store import Store, guarded, run_script

log = logging.getLogger("omnidesk.csat")

ANSWER = re.compile(r"^csat:([A-Za-z0-9_-]{8,64}):([1-5])$")
MAX_COMMENT = 2000

Outcome = Literal["recorded", "already", "unknown"]


def parse_answer(data: str | None) -> tuple[str, int] | None:
    """(token, score) from ``csat:<token>:<score>`` callback / button data."""
    found = ANSWER.match(data or "")
    return (found.group(1), int(found.group(2))) if found else None


def inbound_answer(inbound: Inbound) -> tuple[str, int] | None:
    """A survey answer carried by an inbound: Telegram callback data, WhatsApp reply id or
    quick-reply button payload."""
    for key in ("callback_data", "reply_id", "button_payload"):
        answer = parse_answer(inbound.meta.get(key))
        if answer:
            return answer
    return None


@guarded
def record(
    store: Store, token: str, score: int, comment: str = "", via: str = "web"
) -> tuple[Outcome, str]:
    """Record an answer; ("already", ticket) when the ticket has one (the second is refused)."""
    if not 1 <= int(score) <= 5:
        raise ValueError("score must be 1 to 5")
    now = utcnow()
    outcome, ticket = run_script(
        store.script("csat"), store.prefix, token=token, score=int(score),
        comment=(comment or "").strip()[:MAX_COMMENT], now_ms=int(time.time() * 1000),
        now_iso=now.isoformat(), via=via,
    )  # fmt: skip
    if outcome == "already":
        store.add_event(EventType.CSAT_REFUSED, ticket, actor="customer", via=via, reason="already")
    return outcome, ticket


def consume_inbound(store: Store, inbound: Inbound) -> bool:
    """True when the inbound was a survey answer (recorded or politely refused)."""
    answer = inbound_answer(inbound)
    if answer is None:
        return False
    outcome, ticket = record(store, answer[0], answer[1], via=inbound.channel.value)
    store.incr(f"csat_answers:{outcome}")
    log.info("CSAT answer via %s for %s: %s", inbound.channel.value, ticket or "?", outcome)
    return outcome != "unknown"  # an unknown token is an ordinary message after all


@guarded
def lookup(store: Store, token: str) -> dict[str, str] | None:
    """The survey behind a token: ticket, and the answer when there is one."""
    ticket = text_or_none(store.r.hget(store.keys.csat(token), "ticket"))
    if ticket is None:
        return None
    names = ["csat_score", "csat_comment", "language", "subject"]
    values = store.r.hmget(store.keys.ticket(ticket), names)
    return {"ticket": ticket, **{k: text(v) for k, v in zip(names, values, strict=True) if v}}
