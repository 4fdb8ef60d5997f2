"""Customer satisfaction: a 1-5 survey sent on resolve, answered once per ticket.

Telegram and WhatsApp get buttons (`outbound.meta["buttons"]`: a JSON list of
``[label, "csat:<token>:<score>"]``); e-mail and the web form get links to the page the
daemon serves at ``GET /csat/<token>`` (GET only shows the form, so a link scanner cannot
answer for the customer; POST records). A button press comes back as an inbound message
whose callback data is ``csat:<token>:<score>``: `consume_inbound` records it instead of
opening a ticket (omnidesk.csat_answers, called from Runtime.read).

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
from typing import Any

from omnidesk.csat_answers import (  # noqa: F401  (re-exported: the page and the tests)
    ANSWER,
    MAX_COMMENT,
    Outcome,
    consume_inbound,
    inbound_answer,
    lookup,
    parse_answer,
    record,
)
from omnidesk.events import EventType
from omnidesk.i18n import N_, translator
from omnidesk.model import Channel, Direction, Language, Outbound, Ticket
from omnidesk.store import Store, guarded

log = logging.getLogger("omnidesk.csat")

TOKEN_TTL_S = 30 * 24 * 3600
AUTOMATIC_TAGS = frozenset({"automatic", "auto_reply", "bounce"})
NO_REPLY = re.compile(r"(^|[._+-])(no-?reply|do-?not-?reply|mailer-daemon|postmaster)", re.I)
BUTTON_CHANNELS = (Channel.TELEGRAM, Channel.WHATSAPP)

SURVEY_TEXT = N_(
    "We hope we served you well. How would you rate our service on {ticket}? (1 poor - 5 excellent)"
)
SCORES = range(1, 6)


def score_labels(lang: str) -> list[str]:
    """The 1-5 button labels: Arabic-Indic digits (١-٥) for an Arabic reader."""
    tr = translator(lang, digits="arab")
    return [tr.number(n) for n in SCORES]


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
