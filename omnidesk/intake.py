"""Intake: make the store agree with one Inbound and the router's Decision, atomically.

The whole decision (dedupe, edit, thread, reopen, open a ticket, find or link the customer,
queue it, write the events) is one Lua script (omnidesk/lua/intake.lua), so running the same
intake twice, or from two workers at once, gives one ticket. Python only prepares the
fields; `Intake.many` sends a whole batch in one call of the script, taken in order.

A message seen before is a duplicate, with one exception: a web form sent without its own
`submission_id` is known only by a hash of its content (`Inbound.content_id`), and the
same content sent again means something different once its ticket is done. The rule:
- while that ticket is open (new, open, pending_customer), the repeat is a duplicate of it
  (a double click, a browser retry, an impatient customer): outcome "duplicate", with the
  ticket's id, and nothing new is stored;
- once it is resolved, within the reopen window, the repeat is added to it and reopens it,
  as a reply to a resolved ticket does: the customer says the problem is still there;
- once it is closed, archived, or resolved longer ago than the window, it opens a new
  ticket, and later repeats dedupe to that one.
Only a new POST is a repeat: a redelivery of one already taken in (a batch retried after
an outage, a worker killed before its ack) carries the same receive time, and its per-POST
key (`post_key`) makes it a duplicate of what that POST did, whatever the ticket's status.

SLA hooks run after the script, in the caller's process: `on_opened(ticket)` for a new
ticket and `on_customer_message(ticket)` for a customer follow-up. Both are no-ops until
the SLA engine sets them (`IntakeHooks`). They are part of the intake: a transient error in
one (Redis unreachable, `TransientError`, any Redis error) is the batch's error, so the
batch is not acked and runs again. Any other error is one ticket's for good (an SLA record
it cannot read, a policy a reload removed, a bug): retrying the batch would only fail again
and hold up every other ticket in it, so it is logged with the ticket id and counted
(stats ``hook_failed``, in /metrics), and the ticket is left to the SLA repair sweep
(omnidesk.sla.repair) and an operator.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from omnidesk.errors import PartialFailure, TransientError
from omnidesk.model import (
    Channel,
    Decision,
    Direction,
    Inbound,
    Message,
    Priority,
    Status,
    Ticket,
    utcnow,
)
from omnidesk.store import Store, encode_fields, guarded, ms, raise_item_error, urgency_score
from omnidesk.store import is_transient as store_is_transient
from omnidesk.text import preview

log = logging.getLogger("omnidesk.intake")

REOPEN_WINDOW = timedelta(days=7)  # default of service.reopen_window_days
DEDUPE_WINDOW = timedelta(days=30)  # default of service.dedupe_window_days

# What a hook returns is not used: the SLA engine's hooks return the state they wrote.
Hook = Callable[[Ticket], object]
BatchHook = Callable[[list[Ticket]], None]
# The batch's new tickets, and when intake opened those a redelivery read back (their
# `updated_at` may have moved since: a follow-up taken in before the redelivery)
OpenedHook = Callable[[list[Ticket], Mapping[str, datetime]], None]
# Before the script: the first SLA due time of each ticket the batch may open (None: no clocks)
DueHook = Callable[[list[Ticket]], list[datetime | None]]


def _no_op(ticket: Ticket) -> None:
    return None


@dataclass
class IntakeHooks:
    """What runs after intake; the SLA engine replaces these to start and restart clocks.

    `on_opened_many`, when set, takes a whole batch's new tickets at once (one round trip
    instead of several per ticket) and is used instead of `on_opened`."""

    on_opened: Hook = _no_op
    on_customer_message: Hook = _no_op
    on_opened_many: OpenedHook | None = None
    # Before the script: a new ticket is stored with its first due time (its queue order, and
    # its PostgreSQL row from its first event on), the one its clocks then start with.
    first_dues: DueHook | None = None
    # After the SLA hooks: the daemon's plugins (push assignment). Isolated by its caller
    # (omnidesk.plugins.Plugins.tickets_opened), so its failure never fails the batch.
    after_opened: BatchHook | None = None


@dataclass(frozen=True)
class IntakeResult:
    """What intake did: opened, appended, edited, duplicate, auto_attached, auto_ignored."""

    outcome: str
    ticket_id: str | None
    message_id: str | None
    customer_id: str | None = None
    reopened: bool = False
    # An opened ticket and its first message as the script stored them, for what follows in
    # the same batch (SLA hooks, receipts) instead of reading them back from Redis.
    ticket: Ticket | None = field(default=None, compare=False, repr=False)
    message: Message | None = field(default=None, compare=False, repr=False)

    @property
    def created(self) -> bool:
        return self.outcome == "opened"


@dataclass
class Intake:
    store: Store
    reopen_window: timedelta = REOPEN_WINDOW
    # how long an auto-reply that opened nothing is remembered (Redis); after that
    # PostgreSQL's unique (channel, account, external_id) is the backstop
    dedupe_window: timedelta = DEDUPE_WINDOW
    hooks: IntakeHooks = field(default_factory=IntakeHooks)

    def __call__(self, inbound: Inbound, decision: Decision) -> IntakeResult:
        return self.many([(inbound, decision)])[0]

    @guarded
    def many(self, items: list[tuple[Inbound, Decision]]) -> list[IntakeResult]:
        """Intake a batch in one script call, in order; each item is atomic on its own."""
        if not items:
            return []
        now = utcnow()
        prepared = [self._prepare(inbound, decision, now) for inbound, decision in items]
        drafts = [draft for _, draft, _ in prepared]
        for (args, draft, _), due in zip(prepared, self._first_dues(drafts), strict=True):
            if due is not None:
                args["due_at"] = due.isoformat()
                args["score"] = str(urgency_score(draft.priority, ms(due)))
        batch = msgspec.json.encode([args for args, _, _ in prepared])
        replies = self.store.script("intake")(keys=[self.store.prefix], args=[batch])
        raise_item_error(replies)
        results = [
            _result(reply, draft, message)
            for reply, (_, draft, message) in zip(replies, prepared, strict=True)
        ]
        self._run_hooks(results)
        return results

    def _first_dues(self, drafts: list[Ticket]) -> list[datetime | None]:
        """The `first_dues` hook's answer; when it fails, none: the clocks' own hook then
        sets each due time after the script (`on_opened_many`), which reports the error."""
        if self.hooks.first_dues is None:
            return [None] * len(drafts)
        try:
            dues = self.hooks.first_dues(drafts)
            if len(dues) != len(drafts):
                raise ValueError(f"{len(dues)} due times for {len(drafts)} tickets")
            return dues
        except Exception as exc:
            log.warning("SLA hook first_dues failed (%s): due times follow the clocks", exc)
            return [None] * len(drafts)

    def _run_hooks(self, results: list[IntakeResult]) -> None:
        """An opened ticket is the result's own (what the script stored), so only
        redeliveries (duplicates) and follow-ups are read back from the store."""
        hooks = self.hooks
        if (
            hooks.on_opened is _no_op
            and hooks.on_customer_message is _no_op
            and hooks.on_opened_many is None
            and hooks.after_opened is None
        ):
            return
        # A duplicate is a redelivery: the process that opened the ticket may have died
        # before its hooks ran, so it goes through on_opened again (which then does nothing;
        # or, through on_opened_many, starts the clocks from when intake opened the ticket:
        # `opened_at`).
        opened = [
            r.ticket_id
            for r in results
            if r.outcome in ("opened", "duplicate") and r.ticket_id is not None
        ]
        appended = [
            r.ticket_id for r in results if r.outcome == "appended" and r.ticket_id is not None
        ]
        if not opened and not appended:
            return
        heads = {r.ticket.id: r.ticket for r in results if r.ticket is not None}
        redelivered = [tid for tid in dict.fromkeys(opened) if tid not in heads]
        opened_at: dict[str, datetime] = {}
        if redelivered:
            heads.update((t.id, t) for t in self.store.ticket_heads(redelivered))
            if hooks.on_opened_many is not None:
                opened_at = self.store.opened_at(redelivered)
        tickets = {t.id: t for t in self.store.get_tickets(list(dict.fromkeys(appended)))}
        # A transient hook error fails the batch: it is retried (the intake is idempotent,
        # and the redelivery's duplicates run on_opened again). A permanent one is counted
        # and left to the SLA repair sweep, which also catches any ticket whose clocks
        # still missed a step.
        new = [heads[tid] for tid in dict.fromkeys(opened) if tid in heads]
        if hooks.on_opened_many is not None:
            self._open_many(hooks.on_opened_many, hooks.on_opened, new, opened_at)
        else:
            for ticket in new:
                self._hook("on_opened", hooks.on_opened, ticket)
        for tid in appended:
            if tid in tickets:
                self._hook("on_customer_message", hooks.on_customer_message, tickets[tid])
        if hooks.after_opened is not None and new:
            hooks.after_opened(new)

    def _open_many(
        self,
        many: OpenedHook,
        one: Hook,
        tickets: list[Ticket],
        opened_at: Mapping[str, datetime],
    ) -> None:
        """`on_opened_many`; if it fails for good without saying for which tickets, each
        ticket is tried on its own (`on_opened` leaves clocks already started alone, and
        starts a redelivered one from its `updated_at`: a failure on top of a redelivery)."""
        try:
            many(tickets, opened_at)
        except PartialFailure as exc:
            for tid, error in exc.failed.items():
                self._hook_failed("on_opened", tid, error)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning("SLA hook on_opened_many failed (%s); trying one by one", exc)
            for ticket in tickets:
                self._hook("on_opened", one, ticket)

    def _hook(self, name: str, hook: Hook, ticket: Ticket) -> None:
        """Run one ticket's hook: a transient error fails the batch, any other is counted."""
        try:
            hook(ticket)
        except Exception as exc:
            if is_transient(exc):
                raise
            self._hook_failed(name, ticket.id, exc)

    def _hook_failed(self, name: str, ticket_id: str, exc: Exception) -> None:
        log.error("SLA hook %s failed for %s: %s: %s", name, ticket_id, type(exc).__name__, exc)
        self.store.incr("hook_failed")

    def _prepare(
        self, inbound: Inbound, decision: Decision, now: datetime
    ) -> tuple[dict[str, Any], Ticket, Message]:
        """The script's argument (its JSON object), the ticket it opens if it opens one and
        the message it stores (neither has its ticket id yet). The score orders the queue by
        the message time until `many` sets the first due time."""
        received = inbound.received_at
        created_ms = ms(received)
        mid = new_message_id()
        message = Message(
            id=mid,
            ticket_id="",
            direction=Direction.IN,
            channel=inbound.channel,
            created_at=received,
            sent_at=inbound.sent_at,
            text=inbound.text,
            subject=inbound.subject,
            author=inbound.author.name,
            external_id=inbound.external_id,
            account=inbound.account,
            content_id=True if inbound.content_id else None,
            attachments=inbound.attachments,
            raw_ref=inbound.raw_ref,
        )
        priority = Priority(decision.priority)
        ticket = Ticket(
            id="",
            channel=inbound.channel,
            account=inbound.account,
            customer_id="",
            created_at=received,
            updated_at=now,
            subject=inbound.subject,
            preview=preview(inbound.text or inbound.subject),
            status=Status.NEW,
            queue=decision.queue,
            priority=priority,
            sla_policy=decision.sla_policy,
            tags=list(decision.tags),
            language=inbound.language,
            segment=decision.segment or inbound.segment_hint,
            region=decision.region or inbound.region_hint,
            rule=decision.rule,
            thread_keys=list(inbound.thread_keys),
            contacts=[i.key for i in inbound.author.identities],
            # the commercial registration number, when the form or text gave one: search
            meta=dict(inbound.meta) | _cr_number(inbound),
        )
        customer = {
            "name": inbound.author.name,
            "segment": str(decision.segment or inbound.segment_hint),
            "created_at": now.isoformat(),
        }
        region = decision.region or inbound.region_hint
        if region:
            customer["region"] = region
        edit_of = f"{inbound.channel.value}:{inbound.account}:{inbound.edit_of}"
        args = {
            "channel": inbound.channel.value,
            "dedupe": inbound.dedupe_key,
            "content_id": "1" if inbound.content_id else "0",
            "post": post_key(inbound.dedupe_key, created_ms) if inbound.content_id else "",
            "edit_of": edit_of if inbound.edit_of else "",
            "edit_text": inbound.text,
            "thread_keys": list(inbound.thread_keys),
            "message_keys": list(inbound.message_keys),
            "auto": "1" if inbound.is_machine_mail else "0",
            "now_ms": str(ms(now)),
            "now_iso": now.isoformat(),
            "year": str(now.year),  # ticket ids count per year of intake
            "reopen_ms": str(int(self.reopen_window.total_seconds() * 1000)),
            "dedupe_window_s": str(max(1, int(self.dedupe_window.total_seconds()))),
            "mid": mid,
            "message": encode_fields(message, skip=frozenset({"id", "ticket_id"})),
            "ticket": encode_fields(ticket, skip=frozenset({"id", "customer_id", "message_ids"})),
            "created_ms": str(created_ms),
            "score": str(urgency_score(priority, created_ms)),
            "queue": decision.queue,
            "priority": priority.value,
            "sla_policy": decision.sla_policy,
            "rule": decision.rule or "",
            # carried on the ticket_opened event so reports need no ticket lookup
            "segment": str(decision.segment or inbound.segment_hint),
            "region": region or "",
            "identities": [i.key for i in inbound.author.identities],
            "lookup": lookup_keys(inbound),
            "vouched": "1" if vouched(inbound) else "0",
            "customer": [x for kv in customer.items() for x in kv],
            "customer_name": inbound.author.name,
            "due_at": "",
        }
        return args, ticket, message


def _result(reply: list[str], draft: Ticket, message: Message) -> IntakeResult:
    """The script's reply as a result; an opened ticket's with the ticket and message it
    stored (the drafts, with the ids the script gave them)."""
    outcome, tid, mid = reply[0], reply[1] or None, reply[2] if reply[2] not in ("", "-") else None
    opened = outcome == "opened" and tid is not None and mid is not None
    return IntakeResult(
        outcome=outcome,
        ticket_id=tid,
        message_id=mid,
        customer_id=reply[3] or None,
        reopened=reply[4] == "1",
        ticket=(
            msgspec.structs.replace(draft, id=tid, customer_id=reply[3], message_ids=[mid])
            if opened
            else None
        ),
        message=msgspec.structs.replace(message, ticket_id=tid) if opened else None,
    )


# Channels whose sender anyone can claim to be: a web form takes any e-mail and phone typed
# into it. Their identities find a customer but are never linked onto one that exists.
UNVOUCHED_CHANNELS = frozenset({Channel.WEB})


def vouched(inbound: Inbound) -> bool:
    """The channel vouches for the sender's identities (a mailbox, a Telegram user id, a
    WhatsApp number the message came from), so they may be linked onto one customer."""
    return inbound.channel not in UNVOUCHED_CHANNELS


def lookup_keys(inbound: Inbound) -> list[str]:
    """The identity keys intake.lua finds the message's customer by, in order: every one
    for a vouched sender; for a web form only the first (the e-mail when given, else the
    phone), so a stranger typing someone's phone beside their own e-mail is not taken for
    them (omnidesk.known routes by the same customer)."""
    keys = [i.key for i in inbound.author.identities]
    return keys if vouched(inbound) else keys[:1]


def _cr_number(inbound: Inbound) -> dict[str, str]:
    cr_number = inbound.hints.get("cr_number")
    return {"cr_number": cr_number} if cr_number else {}


def post_key(dedupe_key: str, created_ms: int) -> str:
    """The dedupe key of one POST of a form known by its content hash: the hash and the
    time it was received (a redelivery carries the same; a new POST of the same content
    does not). Kept in P:seen beside the content's key, listed in P:ticket:<id>:posts, and
    removed with the ticket's other dedupe entries when it is archived."""
    return f"{dedupe_key}@{created_ms}"


def is_transient(exc: BaseException) -> bool:
    """An error that may pass if the same work runs again later: ours, or a Redis error the
    store calls transient. WRONGTYPE, a script error or bad data stays with its ticket:
    retrying the batch would only fail again."""
    return isinstance(exc, TransientError) or store_is_transient(exc)


def new_message_id() -> str:
    """Time-ordered and unique across processes: ms timestamp + 48 random bits."""
    return f"M-{int(utcnow().timestamp() * 1000):x}-{os.urandom(6).hex()}"
