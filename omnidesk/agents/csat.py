"""Customer satisfaction: a 1-5 survey sent on resolve, answered once per ticket.

Telegram and WhatsApp get buttons (`outbound.meta["buttons"]`: a JSON list of
``[label, "csat:<token>:<score>"]``); e-mail and the web form get links to the page the
daemon serves at ``GET /csat/<token>`` (GET only shows the form, so a link scanner cannot
answer for the customer; POST records). A button press comes back as an inbound message
whose callback data is ``csat:<token>:<score>``: `consume_inbound` records it instead of
opening a ticket (called from Runtime.prepare).

    P:csat:<token>   hash  ticket, created_ms (expires after 30 days)
    P:ticket:<id>    csat_token, csat_score, csat_comment, csat_at (HSETNX: first answer wins)

No survey for a queue with `csat: false`, a ticket tagged automatic/auto_reply/bounce, or a
no-reply / mailer-daemon address.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from omnidesk.agents.assign import scripts
from omnidesk.events import EventType
from omnidesk.i18n import N_, translator
from omnidesk.model import Channel, Direction, Inbound, Language, Outbound, Ticket, utcnow
from omnidesk.replies import text, text_or_none
from omnidesk.store import Store, guarded, run_script

log = logging.getLogger("omnidesk.csat")

TOKEN_TTL_S = 30 * 24 * 3600
ANSWER = re.compile(r"^csat:([A-Za-z0-9_-]{8,64}):([1-5])$")
AUTOMATIC_TAGS = frozenset({"automatic", "auto_reply", "bounce"})
NO_REPLY = re.compile(r"(^|[._+-])(no-?reply|do-?not-?reply|mailer-daemon|postmaster)", re.I)
BUTTON_CHANNELS = (Channel.TELEGRAM, Channel.WHATSAPP)
MAX_COMMENT = 2000

Outcome = Literal["recorded", "already", "unknown"]

SURVEY_TEXT = N_(
    "We hope we served you well. How would you rate our service on {ticket}? "
    "(1 poor - 5 excellent)"
)
SCORES = range(1, 6)


def score_labels(lang: str) -> list[str]:
    """The 1-5 button labels: Arabic-Indic digits (١-٥) for an Arabic reader."""
    tr = translator(lang, digits="arab")
    return [tr.number(n) for n in SCORES]


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
        scripts(store)["csat"], store.prefix, token=token, score=int(score),
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


@dataclass
class Surveys:
    store: Store
    queue_wants_csat: Callable[[str], bool]
    outbound_for: Callable[..., Outbound]  # Desk.outbound_for
    send_reply: Callable[[Outbound], None]
    public_url: Callable[[], str]  # base URL of the daemon as customers see it

    def eligible(self, ticket: Ticket) -> str | None:
        """None when a survey should go out, else why not."""
        if not self.queue_wants_csat(ticket.queue):
            return "queue has csat off"
        if AUTOMATIC_TAGS & set(ticket.tags):
            return "automatic message"
        customer = self.store.get_customer(ticket.customer_id)
        for ident in customer.identities if customer else []:
            if ident.kind.value == "email" and NO_REPLY.search(ident.value.split("@")[0]):
                return "no-reply address"
        if self.store.r.hexists(self.store.keys.ticket(ticket.id), "csat_score"):
            return "already answered"
        return None

    @guarded
    def send(self, ticket: Ticket, agent: Any = None) -> Outbound | None:
        """Send the survey for a resolved ticket, or return None (and say why in the log)."""
        why_not = self.eligible(ticket)
        if why_not:
            log.info("no CSAT survey for %s: %s", ticket.id, why_not)
            return None
        token = secrets.token_urlsafe(16)
        key = self.store.keys.csat(token)
        pipe = self.store.r.pipeline(transaction=True)
        pipe.hset(key, mapping={"ticket": ticket.id, "created_ms": int(time.time() * 1000)})
        pipe.expire(key, TOKEN_TTL_S)
        pipe.hset(self.store.keys.ticket(ticket.id), "csat_token", token)
        pipe.execute()
        lang = "en" if ticket.language == Language.EN else "ar"
        text = translator(lang)._(SURVEY_TEXT).format(ticket=ticket.id)
        meta: dict[str, str] = {"csat": "1"}
        if ticket.channel in BUTTON_CHANNELS:
            labels = zip(SCORES, score_labels(lang), strict=True)
            buttons = [[label, f"csat:{token}:{n}"] for n, label in labels]
            meta["buttons"] = json.dumps(buttons, ensure_ascii=False)
        else:
            base = self.public_url().rstrip("/")
            links = "\n".join(f"{n}: {base}/csat/{token}?score={n}" for n in range(1, 6))
            text = f"{text}\n\n{links}"
        outbound = self.outbound_for(ticket, text, **meta)
        self.store.add_outbound_message(outbound, "csat", Direction.OUT)
        self.send_reply(outbound)
        self.store.add_event(
            EventType.CSAT_SENT,
            ticket.id,
            queue=ticket.queue,
            channel=ticket.channel.value,
            actor="csat",
        )
        return outbound
