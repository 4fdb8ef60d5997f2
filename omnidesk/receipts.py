"""Receipts: the acknowledgement a rule's `then.auto_reply` names, sent to the customer once
per new ticket, on the channel and account it came in on, in the ticket's language, with
the ticket number and the promised first-response time (`{first_response_due}`).

Decided after intake of a batch (Runtime.process, in the worker that has the pipeline), for
the tickets the batch opened. No receipt goes
- to machine mail: auto-replies, bounces, DSN, ARF and MDN reports (Inbound.is_machine_mail;
  such mail opens no ticket in the first place);
- on the web form: its HTTP answer carries the ticket number, and no connector sends on `web`;
- to a follow-up, an edit or a duplicate: only the message that opened the ticket counts;
- to bulk or list mail (flags ``bulk``, ``mailing_list``; RFC 3834 section 2);
- for a ticket opened more than an hour ago (MAX_AGE_MS): mail read again long after;
- to a sender (customer) that had `service.receipts.max_per_sender_per_hour` receipts in
  the last hour: a loop with another robot, or a flood, ends there.

Each ticket's receipt is claimed once in Redis (lua/receipt_claim.lua: a `receipt` field on
the ticket and the sender's entry in a one-hour ZSET, in one script), so a batch run again
sends nothing twice. A redelivered batch's duplicates are looked at too: the process that
opened the ticket may have died before its receipt. What goes out is an automatic message
(omnidesk.outbound.send_automatic_many, event ``acknowledged``): agents see it on the ticket and
it does not stop the first-response clock.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from omnidesk.config import QueueConfigFile
from omnidesk.events import EventType
from omnidesk.intake import IntakeResult
from omnidesk.intake import is_transient as intake_is_transient
from omnidesk.model import Channel, Decision, Flag, Inbound, Ticket, utcnow
from omnidesk.outbound import Automatic, BatchTickets, Known, SendReplies, send_automatic_many
from omnidesk.sla.protocol import SlaEngine
from omnidesk.store import Store, guarded, ms, raise_item_error
from omnidesk.templates import due_text, render, reply_language, template_text
from omnidesk.ticket_status import queue_name

log = logging.getLogger("omnidesk.receipts")

EVENT = EventType.ACKNOWLEDGED
WINDOW_MS = 3600 * 1000  # max_per_sender_per_hour counts this far back
# A ticket opened longer ago than this gets no receipt however it is read again (a redelivery
# comes within minutes; an IMAP re-read or a quarantine retry may come days later).
MAX_AGE_MS = 3600 * 1000


@dataclass
class Receipts:
    store: Store
    config: QueueConfigFile
    send_replies: SendReplies
    clocks: SlaEngine | None = None  # the first-response due time, when set

    def after_intake(
        self,
        items: list[tuple[Inbound, Decision]],
        results: list[IntakeResult],
        batch_tickets: BatchTickets | None = None,
    ) -> list[str]:
        """Send the receipts a batch's new tickets are owed; returns their ticket ids. A
        transient error (Redis, the broker) is raised for the batch to run again; any other
        stays with its ticket (logged, counted as ``receipts_failed``). `batch_tickets`: the
        batch's tickets, shared with the guide answers that follow."""
        limit = self.config.service.receipts.max_per_sender_per_hour
        wanted = [
            (decision.auto_reply, result)
            for (inbound, decision), result in zip(items, results, strict=True)
            if decision.auto_reply and limit > 0 and _new_ticket(inbound, result)
        ]
        if not wanted:
            return []
        ids = [r.ticket_id for _, r in wanted if r.ticket_id]  # _new_ticket saw each has one
        if batch_tickets is None:
            batch_tickets = BatchTickets.of_intake(self.store, results)
        tickets = batch_tickets.get(ids)
        owed = [(name, tickets[r.ticket_id], r) for name, r in wanted if r.ticket_id in tickets]
        claims = self._claim([(t, r) for _, t, r in owed], limit)
        claimed: list[tuple[str, Ticket]] = []
        for (name, ticket, _), claim in zip(owed, claims, strict=True):
            if claim == "claimed":
                claimed.append((name, ticket))
            elif claim != "done":
                log.info("no receipt for %s: %s", ticket.id, claim)
        sent: list[str] = []
        try:
            self._send_claimed(claimed, sent, batch_tickets)
        except Exception as exc:
            if not intake_is_transient(exc):
                raise
            for _, ticket in claimed:  # the batch runs again: its next run sends them
                if ticket.id not in sent:
                    self._release(ticket)
            raise
        return sent

    def _send_claimed(
        self, claimed: list[tuple[str, Ticket]], sent: list[str], batch_tickets: BatchTickets
    ) -> None:
        """Read what every receipt needs in a few round trips, render each, then record
        them all at once and queue each; the ticket ids queued go to `sent` as they go."""
        ids = [ticket.id for _, ticket in claimed]
        customers = self.store.get_customers(list({t.customer_id for _, t in claimed}))
        messages = batch_tickets.messages_of([t for _, t in claimed])
        dues = self.clocks.first_response_dues(ids) if self.clocks is not None and ids else {}
        ready: list[Automatic] = []
        for name, ticket in claimed:
            known = Known(customers.get(ticket.customer_id), messages.get(ticket.id, []))
            due = dues.get(ticket.id)
            try:
                ready.append(self.receipt(ticket, name, known, due))
            except Exception as exc:  # this ticket's trouble (a template): not the batch's
                self._failed(ticket.id, exc)
        if not ready:
            return
        try:
            send_automatic_many(self.store, self.send_replies, ready, event=EVENT, queued=sent)
        except Exception as exc:
            if intake_is_transient(exc):
                raise
            for item in ready:  # those not queued are marked failed on their tickets
                if item.ticket.id not in sent:
                    self._failed(item.ticket.id, exc)

    def _failed(self, ticket_id: str, exc: Exception) -> None:
        log.error("receipt for %s failed: %s: %s", ticket_id, type(exc).__name__, exc)
        self.store.incr("receipts_failed")

    def send(
        self,
        ticket: Ticket,
        template: str,
        *,
        known: Known | None = None,
        due: datetime | None = None,
    ) -> None:
        """Render `template` for the ticket (its customer and messages in `known`, read
        here when not given; `due`, its first-response time) and send it as an automatic
        message."""
        if known is None:
            known = Known(
                self.store.get_customer(ticket.customer_id),
                self.store.ticket_messages(ticket.id),
            )
        send_automatic_many(
            self.store, self.send_replies, [self.receipt(ticket, template, known, due)], event=EVENT
        )

    def receipt(
        self, ticket: Ticket, template: str, known: Known, due: datetime | None
    ) -> Automatic:
        """The receipt `template` says for this ticket, in its language."""
        if template not in self.config.templates:  # `omnidesk check` catches this first
            raise KeyError(f"no template {template!r}")
        language = reply_language(ticket.language)
        customer = known.customer
        values = {
            "customer_name": (customer.name if customer else "") or "",
            "ticket_id": ticket.id,
            # what the customer may read of the queue (its public_title), never its id
            "queue": queue_name(self.config.queues, ticket.queue, language),
            "first_response_due": due_text(due, language) if due else "",
        }
        text = render(template_text(self.config.templates[template], language), values)
        meta = {
            "template_values": json.dumps(values, ensure_ascii=False),
            # the customer's message opened the window a channel may reply in (WhatsApp 24 h)
            "last_customer_at": ticket.meta.get("timestamp") or ticket.created_at.isoformat(),
        }
        return Automatic(ticket, text, known, meta)

    @guarded
    def _claim(self, owed: list[tuple[Ticket, IntakeResult]], limit: int) -> list[str]:
        """The batch's claims in one script call (lua/receipt_claim.lua), in order."""
        if not owed:
            return []
        args = {
            "limit": limit,
            "window_ms": WINDOW_MS,
            "now_ms": ms(utcnow()),
            "max_age_ms": MAX_AGE_MS,
            "tickets": [
                [ticket.id, result.message_id, ticket.customer_id or ticket.id]
                for ticket, result in owed
            ],
        }
        script = self.store.script("receipt_claim")
        claims = script(keys=[self.store.prefix], args=[json.dumps(args)])
        raise_item_error(claims)
        return [str(c) for c in claims]

    def _release(self, ticket: Ticket) -> None:
        """Give a claim back when its receipt could not be queued, so the batch's next run
        sends it (best effort: Redis may be the one away)."""
        try:
            pipe = self.store.r.pipeline(transaction=True)
            pipe.hdel(self.store.keys.ticket(ticket.id), "receipt")
            sender = ticket.customer_id or ticket.id
            pipe.zrem(self.store.keys.receipts_sender(sender), ticket.id)
            pipe.execute()
        except Exception as exc:
            log.warning("receipt claim of %s kept: %s", ticket.id, exc)


_NO_AUTO_RESPONSE = frozenset({Flag.BULK, Flag.MAILING_LIST})  # the ticket opens, quietly


def _new_ticket(inbound: Inbound, result: IntakeResult) -> bool:
    """The message may have opened its ticket: opened now, or a redelivery of what did
    (the claim script checks it is the ticket's first message). Never machine mail, nor
    bulk or list mail (RFC 3834 section 2: a receipt could go to the whole list), and never
    the web form, whose answer is its receipt."""
    if result.outcome not in ("opened", "duplicate") or not result.ticket_id:
        return False
    if not result.message_id:
        return False
    if not _NO_AUTO_RESPONSE.isdisjoint(inbound.flags):
        return False
    return not inbound.is_machine_mail and inbound.channel != Channel.WEB
