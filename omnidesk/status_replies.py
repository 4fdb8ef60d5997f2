"""Track my request in a chat or by e-mail: a message that only asks for a ticket's status
is answered with it on the conversation it came on, and opens no ticket.

A status request is
- on Telegram or WhatsApp: a ticket number on its own ("OD-2026-000123", "#od-٢٠٢٦-١٢٣");
- by e-mail: a subject that is only the ticket tag and the word status or حالة
  ("[#OD-2026-000123] status", "حالة [#OD-2026-000123]"), and a body that, quotes and
  signature stripped (connectors/email/split.py), is empty or only says status/حالة: a
  mail with anything more to say is a message, whatever its subject.
Machine mail (auto-replies, bounces, DSN/ARF/MDN reports) and edits are never requests: an
out-of-office answer to a status reply must not start a loop.

A number alone in a chat may also be an answer: an agent asked "what is your reference?".
So when the ticket is the sender's own and open, the message is answered AND taken in on
that ticket (`Handled.keep_on`: intake threads it there by its ``ticket:<id>`` key), so the
agent sees it; otherwise it opens nothing.

The answer (omnidesk.ticket_status.render_both: Arabic first unless the sender's client
says English) goes only to a sender whose identity is the ticket's customer's; for any
other sender, an unknown ticket or one that has left Redis, nothing is sent, so nothing
proves a ticket exists (those are counted in P:stats ``status_requests:<outcome>``). A
sender gets at most `service.web_form.status_replies_per_sender` answers per window, and a
redelivered payload is answered once (``P:status_req:<dedupe key>``, for the dedupe window).

The answer is an automatic message on the asked ticket (omnidesk.outbound.send_automatic,
event ``status_replied``): agents see it, it stops no SLA clock, and `deliver` sends it with
retries. It goes to the chat (or address) the question came from, threaded under it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec

from omnidesk.config import QueueConfigFile
from omnidesk.errors import TransientError
from omnidesk.events import EventType
from omnidesk.model import Channel, Customer, Direction, Flag, Inbound, Message
from omnidesk.outbound import Known, SendReplies, send_automatic
from omnidesk.ratelimit import RateLimiter
from omnidesk.store import Store, guarded
from omnidesk.ticket_status import (
    DIGITS,
    Lang,
    TicketStatus,
    identity_keys,
    render_both,
    ticket_number,
)

log = logging.getLogger("omnidesk.status_replies")

EVENT = EventType.STATUS_REPLIED
CHATS = (Channel.TELEGRAM, Channel.WHATSAPP)
_WORDS: dict[str, Lang] = {"status": "en", "حالة": "ar", "الحالة": "ar"}
_TAG = r"\[\s*#\s*(OD-\d{4}-\d{1,12})\s*\]"
_SUBJECT = re.compile(
    rf"^\s*(?:{_TAG}\s*[:\-]?\s*(?P<w1>\S+)|(?P<w2>\S+)\s*[:\-]?\s*{_TAG})\s*[.!?؟]?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Handled:
    """A status request, answered or not. `keep_on`: the sender's own open ticket the
    message is also taken in on (a chat), None when it opens and joins nothing."""

    keep_on: str | None = None


_TICKET_REF = re.compile(rf"{_TAG}|#?\s*OD\s*-\s*\d{{4}}\s*-\s*\d{{1,12}}", re.IGNORECASE)
_PUNCT = re.compile(r"[\s.,:;!?؟،\-]+")


def only_asks_status(body: str) -> bool:
    """An e-mail's new text (quotes and signature already split off by the normalizer) is
    empty, or only the ticket number and a status word: nothing a person must read."""
    text = _TICKET_REF.sub(" ", (body or "").translate(DIGITS))
    words = [w for w in _PUNCT.split(text.lower()) if w]
    return all(w in _WORDS for w in words)


def requested_ticket(inbound: Inbound) -> tuple[str, Lang | None] | None:
    """(ticket id, the language the request was written in, if it says) when the inbound
    only asks for a ticket's status; None for anything else."""
    if inbound.edit_of or inbound.has_flag(Flag.EDITED) or inbound.attachments:
        return None
    if inbound.is_machine_mail:
        return None
    if inbound.channel in CHATS:
        found = ticket_number(inbound.text)
        return (found, None) if found else None
    if inbound.channel == Channel.EMAIL:
        match = _SUBJECT.match((inbound.subject or "").translate(DIGITS))
        if match is None:
            return None
        word = (match.group("w1") or match.group("w2") or "").lower()
        lang = _WORDS.get(word)
        tag = match.group(1) or match.group(4)
        if lang is None or tag is None or not only_asks_status(inbound.text):
            return None
        found = ticket_number(tag)
        return (found, lang) if found else None
    return None


def reply_language(inbound: Inbound, asked: Lang | None) -> Lang:
    if asked:
        return asked
    code = (inbound.author.language_code or "").lower()[:2]
    return "en" if code == "en" else "ar"


@dataclass
class StatusReplies:
    store: Store
    config: QueueConfigFile
    send_replies: SendReplies
    records: Any = None
    dedupe_window: timedelta = timedelta(days=30)

    def consume(self, inbound: Inbound) -> Handled | None:
        """Handled when `inbound` was a status request (answered or not), None when it is
        an ordinary message. Handled.keep_on names the ticket it still goes to."""
        asked = requested_ticket(inbound)
        if asked is None:
            return None
        ticket_id, lang = asked
        sender = identity_keys(inbound.author.identities)
        lookup = TicketStatus(self.store, self.config.queues, self.records)
        status = lookup.for_identities(ticket_id, sender)
        ticket = self.store.get_ticket(ticket_id) if status is not None else None
        handled = Handled()
        if ticket is not None and ticket.status.is_open and inbound.channel in CHATS:
            handled = Handled(keep_on=ticket.id)  # the sender's own open ticket: keep it
        if not self._claim(inbound):
            self._count("repeated")  # a redelivered payload: answered the first time
            return handled
        limits = self.config.service.web_form
        limited = RateLimiter(self.store).hit(
            "status:sender",
            min(sender) if sender else inbound.dedupe_key,
            limits.status_replies_per_sender,
            limits.rate_window_s,
        )
        if limited is not None:
            self._count("rate_limited")
            return handled
        if status is None or ticket is None:
            # not theirs, no such ticket, or only in the records (nothing in Redis to record
            # the answer on): the same silence for all
            self._count("unanswered")
            return handled
        text = render_both(status, reply_language(inbound, lang))
        # the answer goes where the question came from: the ticket as seen from that
        # conversation (its channel, account, chat and thread), under the request itself
        asked_from = msgspec.structs.replace(
            ticket,
            channel=inbound.channel,
            account=inbound.account,
            subject=inbound.subject,
            thread_keys=list(inbound.thread_keys),
            contacts=[i.key for i in inbound.author.identities],
            meta={**inbound.meta, "last_customer_at": inbound.received_at.isoformat()},
        )
        request = Message(
            id="-",
            ticket_id=ticket.id,
            direction=Direction.IN,
            channel=inbound.channel,
            created_at=inbound.received_at,
            external_id=inbound.external_id,
        )
        known = Known(
            Customer(id=ticket.customer_id, identities=list(inbound.author.identities)),
            [request],
        )
        try:
            send_automatic(
                self.store, self.send_replies, asked_from, text, event=EVENT, known=known
            )
        except TransientError:
            self._release(inbound)  # the batch runs again and answers then
            raise
        self._count("answered")
        log.info("status of %s answered on %s", ticket.id, inbound.channel.value)
        return handled

    @guarded
    def _claim(self, inbound: Inbound) -> bool:
        key = self.store.keys.status_req(inbound.dedupe_key)
        ttl = max(1, int(self.dedupe_window.total_seconds()))
        return bool(self.store.r.set(key, "1", nx=True, ex=ttl))

    @guarded
    def _release(self, inbound: Inbound) -> None:
        self.store.r.delete(self.store.keys.status_req(inbound.dedupe_key))

    def _count(self, outcome: str) -> None:
        self.store.incr(f"status_requests:{outcome}")
