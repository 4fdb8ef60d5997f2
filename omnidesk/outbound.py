"""What goes out on a ticket: the Outbound that answers it on its own channel and account,
and messages the system sends by itself (receipts; later status replies).

An automatic message is a message on the ticket like an agent's reply: agents see it in the
thread, `deliver` sends it with retries and records its delivery status. It differs in two
ways: its author is the system (`SYSTEM_AUTHOR`) and its event is its own kind (for
example ``acknowledged``), never ``replied``, so it stops no SLA clock, sets no first
response in the records and counts as no agent's reply in the reports.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from omnidesk.errors import TransientError
from omnidesk.events import EventType
from omnidesk.intake import IntakeResult, new_message_id
from omnidesk.model import (
    Channel,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Message,
    Outbound,
    Ticket,
)
from omnidesk.store import Store
from omnidesk.ticket_status import contact_identities

log = logging.getLogger("omnidesk.outbound")

SendReply = Callable[[Outbound], None]
# Queues several at once (the pipeline's send_replies: one broker message for a batch's
# receipts, delivered together).
SendReplies = Callable[[list[Outbound]], None]
SYSTEM_AUTHOR = "omnidesk"  # the author of what the system sends by itself
# an agent's reply (stops clocks) or note
PERSON_EVENTS = frozenset({EventType.REPLIED, EventType.NOTED})

# The identity a reply is addressed to, per channel.
REPLY_IDENTITY = {
    Channel.EMAIL: IdentityKind.EMAIL,
    Channel.TELEGRAM: IdentityKind.TELEGRAM,
    Channel.WHATSAPP: IdentityKind.WHATSAPP,
    Channel.TWITTER: IdentityKind.TWITTER,
    Channel.WEB: IdentityKind.EMAIL,
}


@dataclass(frozen=True)
class Known:
    """What a reply is addressed and threaded from: the ticket's customer and messages."""

    customer: Customer | None
    messages: list[Message]


def recipients(ticket: Ticket, customer: Customer | None) -> list[Identity]:
    """Whom a reply on `ticket` goes to: the identity of the channel's kind the ticket came
    in with (`Ticket.contacts`), never every such identity its customer has: a customer
    record can gather identities nobody verified (a web form's). A ticket recorded before
    contacts were kept falls back to its customer's identities of that kind."""
    kind = REPLY_IDENTITY.get(ticket.channel)
    if ticket.contacts:
        return [i for i in contact_identities(ticket.contacts) if i.kind == kind]
    return [i for i in (customer.identities if customer else []) if i.kind == kind]


def outbound_for(
    store: Store,
    ticket: Ticket,
    text: str,
    *,
    known: Known | None = None,
    **meta: str,
) -> Outbound:
    """An Outbound on the ticket's channel and account, threaded under the last message
    the customer sent (email In-Reply-To/References, the Telegram chat, ...). `known`: the
    ticket's customer and messages when the caller read them already (a batch)."""
    if known is None:
        known = Known(store.get_customer(ticket.customer_id), store.ticket_messages(ticket.id))
    to = recipients(ticket, known.customer)
    inbound = [
        m
        for m in sorted(known.messages, key=lambda m: m.created_at)
        if m.direction == Direction.IN and m.channel == ticket.channel and m.external_id
    ]
    in_reply_to = inbound[-1].external_id if inbound else None
    references: list[str] = []
    if ticket.channel == Channel.EMAIL:
        # what the first message referred to, then every customer message of the thread
        refs = [k.removeprefix("email:") for k in ticket.thread_keys if k.startswith("email:")]
        own = [m.external_id for m in inbound if m.external_id and m.external_id.startswith("<")]
        references = list(dict.fromkeys([*refs[::-1], *own]))
    subject = ticket.subject or ""
    if ticket.channel == Channel.EMAIL:
        if ticket.id not in subject:  # the reference intake threads on: [#OD-...]
            subject = f"{subject} [#{ticket.id}]".strip()
        if not subject.lower().startswith("re:"):
            subject = f"Re: {subject}"
    return Outbound(
        id=new_message_id(),
        ticket_id=ticket.id,
        channel=ticket.channel,
        account=ticket.account,
        text=text,
        subject=subject,
        to=to,
        in_reply_to=in_reply_to,
        references=references,
        meta={**ticket.meta, **meta},
    )


@dataclass
class BatchTickets:
    """The tickets one ingest batch's automatic messages need (receipts, then guide
    answers), and their messages: each read from Redis once for all of them, and those the
    batch opened not at all (intake's results carry them as the script stored them)."""

    store: Store
    by_id: dict[str, Ticket | None] = field(default_factory=dict)  # None: not in Redis
    messages: dict[str, list[Message]] = field(default_factory=dict)  # by ticket id

    @classmethod
    def of_intake(cls, store: Store, results: list[IntakeResult]) -> BatchTickets:
        """Seeded with the tickets the batch opened and their first messages, as intake
        stored them; one that a later item of the batch also names (a follow-up, an edit)
        is read, since it has changed."""
        batch = cls(store)
        named = Counter(r.ticket_id for r in results if r.ticket_id)
        for r in results:
            if r.ticket is not None and r.message is not None and named[r.ticket.id] == 1:
                batch.by_id[r.ticket.id] = r.ticket
                batch.messages[r.ticket.id] = [r.message]
        return batch

    def get(self, ticket_ids: list[str]) -> dict[str, Ticket]:
        """The tickets by id, each read once (one round trip for those not read yet); one
        gone from Redis is left out, and not asked for again."""
        missing = [tid for tid in dict.fromkeys(ticket_ids) if tid not in self.by_id]
        if missing:
            found = {t.id: t for t in self.store.get_tickets(missing)}
            self.by_id.update((tid, found.get(tid)) for tid in missing)
        return {tid: t for tid in ticket_ids if (t := self.by_id.get(tid)) is not None}

    def messages_of(self, tickets: list[Ticket]) -> dict[str, list[Message]]:
        """The tickets' messages (by `Ticket.message_ids`), each ticket's read once."""
        missing = {t.id: t.message_ids for t in tickets if t.id not in self.messages}
        if missing:
            self.messages.update(self.store.messages_of(missing))
        return {t.id: self.messages.get(t.id, []) for t in tickets}


@dataclass(frozen=True)
class Automatic:
    """One message the system sends by itself: its ticket, its text, what the caller knows
    of the ticket already (a batch reads that once), and meta for the connector."""

    ticket: Ticket
    text: str
    known: Known | None = None
    meta: dict[str, str] = field(default_factory=dict)


def send_automatic(
    store: Store,
    send_replies: SendReplies,
    ticket: Ticket,
    text: str,
    *,
    event: EventType,
    known: Known | None = None,
    **meta: str,
) -> Message:
    """Record `text` on `ticket` as a message from the system and queue it for `deliver`.

    The one way to send something nobody typed: `event` names what it is (``acknowledged``
    for a receipt, e.g. ``status_replied`` for a status answer) and is the event the message
    is recorded with, so nothing mistakes it for an agent's reply. The message is marked
    automatic for the channel (e-mail: ``Auto-Submitted: auto-replied``, RFC 3834, so other
    robots do not answer it). `meta` goes to the connector (e.g. ``template_values``);
    `known`, the ticket's customer and messages when the caller has them (a batch).
    Returns the recorded message (delivery "queued"). If the broker refuses it, the message
    says so (delivery "failed: ...") and the error is raised for the caller to retry."""
    (message,) = send_automatic_many(
        store, send_replies, [Automatic(ticket, text, known, meta)], event=event
    )
    if message is None:
        raise KeyError(f"no ticket {ticket.id}")
    return message


def send_automatic_many(
    store: Store,
    send_replies: SendReplies,
    items: list[Automatic],
    *,
    event: EventType,
    queued: list[str] | None = None,
) -> list[Message | None]:
    """`send_automatic` for a batch (the receipts of one ingest batch): every message
    recorded in one MULTI, then all queued for `deliver` at once; their ticket ids go to
    `queued` once queued. One whose ticket is gone is neither recorded nor sent (None in its
    place). If queueing fails, every message says so (delivery "failed: not queued: ...")
    and the error is raised for the caller to retry them."""
    if event in PERSON_EVENTS:
        raise ValueError(f"{event!r} is what a person does: name the automatic message's kind")
    outbounds = [
        outbound_for(store, item.ticket, item.text, known=item.known, auto="1", **item.meta)
        for item in items
    ]
    messages = store.add_outbound_messages(outbounds, SYSTEM_AUTHOR, Direction.OUT, event=event)
    recorded = [o for o, m in zip(outbounds, messages, strict=True) if m is not None]
    if not recorded:
        return messages
    try:
        send_replies(recorded)
    except Exception as exc:
        try:  # best effort: the broker and the store are often away together
            failed = f"failed: not queued: {exc}"
            store.set_deliveries([(o.id, failed) for o in recorded], actor=SYSTEM_AUTHOR)
        except TransientError:
            log.warning("%d messages were recorded but could not be queued", len(recorded))
        raise
    if queued is not None:
        queued.extend(o.ticket_id for o in recorded)
    return messages
