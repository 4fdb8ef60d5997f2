"""Every event type the events stream (``P:events``, see omnidesk.keys) carries, and its fields.

An event is written by a Lua script (through `write_event` in lua/ticket_lib.lua) or by
Python (`Store.add_event`), read back by the console (agents/events.py), the records writer
(db/writer.py) and the reports (reports/recompute.py, db/reports.py). One enum names the
types so a misspelt type fails where it is written, and one struct per type says what
fields it carries, so a reader knows what to expect without reading every writer.

A stream entry holds strings only; `decode` turns one into its struct (numbers converted,
unknown fields ignored), keyed on ``type``. tests/test_events.py scans every Lua script and
Python module for the types they write and checks each is a member here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec


class EventType(StrEnum):
    """The ``type`` field of a stream entry; the comment names who writes it."""

    TICKET_OPENED = "ticket_opened"  # intake.lua
    ROUTED = "routed"  # intake.lua
    MESSAGE_ADDED = "message_added"  # intake.lua
    MESSAGE_EDITED = "message_edited"  # intake.lua
    AUTO_REPLY_IGNORED = "auto_reply_ignored"  # intake.lua
    STATUS_CHANGED = "status_changed"  # set_status.lua, intake.lua, agents/desk.py
    ASSIGNED = "assigned"  # claim.lua, push.lua, reassign.lua, Store.assign
    TRANSFERRED = "transferred"  # move.lua (agents/desk.py)
    ESCALATED = "escalated"  # move.lua (pipeline.py), sla_commit.lua
    MERGED = "merged"  # merge.lua
    PRIORITY_CHANGED = "priority_changed"  # set_priority.lua
    TAGGED = "tagged"  # agents/desk.py
    REPLIED = "replied"  # Store.add_outbound_messages
    NOTED = "noted"  # Store.add_outbound_messages
    ACKNOWLEDGED = "acknowledged"  # receipts.py (a receipt sent by the system)
    STATUS_REPLIED = "status_replied"  # status_replies.py (a status answer)
    GUIDE_ANSWERED = "guide_answered"  # guides/answers.py (a guide sent as an automatic answer)
    DELIVERY = "delivery"  # Store.set_delivery
    CSAT = "csat"  # csat.lua
    CSAT_SENT = "csat_sent"  # agents/csat.py
    CSAT_REFUSED = "csat_refused"  # agents/csat.py
    CUSTOMER_CHANGED = "customer_changed"  # customer_move.lua
    DUE_CHANGED = "due_changed"  # sla_write.lua (the SLA hooks), sla_open_many.lua, set_due.lua
    SLA_WARNED = "sla_warned"  # sla_commit.lua
    SLA_BREACHED = "sla_breached"  # sla_commit.lua
    NOTIFIED = "notified"  # pipeline.py (an SLA ladder notification)
    PRESENCE = "presence"  # agents/assign.py
    TOKEN_CREATED = "token_created"  # agents/tokens.py
    TOKEN_REVOKED = "token_revoked"  # agents/tokens.py
    QUARANTINED = "quarantined"  # quarantine.py
    CALL_ANSWERED = "call_answered"  # agents/cti.py (the screen-pop of the agent who answered)
    LOGIN = "login"  # agents/login.py (a directory login)
    LOGIN_FAILED = "login_failed"  # agents/login.py
    LOGIN_LOCKED = "login_locked"  # agents/login.py (refused: too many failures)
    LOGOUT = "logout"  # agents/login.py
    ACCESS_REVOKED = "access_revoked"  # agents/directory_sync.py (left the directory or a group)
    RELEASED = "released"  # agents/directory_sync.py (a ticket back to its queue)
    # read only: written beside status_changed by earlier versions, still in archives and
    # accepted by the reports as status changes (reports.fold.STATUS_EVENTS)
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"


# The types that put a message (in, out or a note) on a ticket's thread.
MESSAGE_TYPES = frozenset(
    {EventType.REPLIED, EventType.NOTED, EventType.ACKNOWLEDGED, EventType.STATUS_REPLIED,
     EventType.GUIDE_ANSWERED}
)  # fmt: skip

# The types that change one message and nothing of its ticket or customer in PostgreSQL: what
# the system sends by itself (no `updated_at`) and a channel's delivery status. The records
# writer rewrites only the message for these.
MESSAGE_ONLY_TYPES = frozenset(
    {EventType.ACKNOWLEDGED, EventType.STATUS_REPLIED, EventType.GUIDE_ANSWERED,
     EventType.DELIVERY}
)  # fmt: skip


class Event(msgspec.Struct, kw_only=True, tag_field="type", forbid_unknown_fields=False):
    """What every event carries: the ticket (or ""), its queue and channel when written, who
    did it, and when (ms since the epoch)."""

    ticket: str = ""
    queue: str = ""
    channel: str = ""
    actor: str = ""
    ts: int = 0


class TicketOpened(Event, tag=EventType.TICKET_OPENED.value):
    customer: str = ""
    message: str = ""
    created: int = 0  # the customer's message time (ms)
    segment: str = ""
    region: str = ""


class Routed(Event, tag=EventType.ROUTED.value):
    rule: str = ""  # "": fell to the default queue
    priority: str = ""
    sla_policy: str = ""


class MessageAdded(Event, tag=EventType.MESSAGE_ADDED.value):
    message: str = ""
    auto: str = ""  # "1": an auto-reply attached to the ticket


class MessageEdited(Event, tag=EventType.MESSAGE_EDITED.value):
    message: str = ""


class AutoReplyIgnored(Event, tag=EventType.AUTO_REPLY_IGNORED.value):
    external_id: str = ""


class StatusChanged(Event, tag=EventType.STATUS_CHANGED.value):
    from_: str = msgspec.field(default="", name="from")
    to: str = ""
    reason: str = ""  # why a ticket waits (pending_customer)


class Assigned(Event, tag=EventType.ASSIGNED.value):
    agent: str = ""
    how: str = ""  # pull, supervisor, or the push policy
    previous: str = ""


class Transferred(Event, tag=EventType.TRANSFERRED.value):
    from_: str = msgspec.field(default="", name="from")  # the previous queue
    reason: str = ""


class Escalated(Event, tag=EventType.ESCALATED.value):
    from_: str = msgspec.field(default="", name="from")  # the previous queue
    reason: str = ""


class Merged(Event, tag=EventType.MERGED.value):
    into: str = ""  # on the source ticket
    from_: str = msgspec.field(default="", name="from")  # on the target ticket
    messages: int = 0


class PriorityChanged(Event, tag=EventType.PRIORITY_CHANGED.value):
    from_: str = msgspec.field(default="", name="from")
    to: str = ""


class Tagged(Event, tag=EventType.TAGGED.value):
    added: str = ""  # comma-separated
    removed: str = ""


class Replied(Event, tag=EventType.REPLIED.value):
    message: str = ""


class Noted(Event, tag=EventType.NOTED.value):
    message: str = ""


class Acknowledged(Event, tag=EventType.ACKNOWLEDGED.value):
    message: str = ""


class StatusReplied(Event, tag=EventType.STATUS_REPLIED.value):
    message: str = ""


class GuideAnswered(Event, tag=EventType.GUIDE_ANSWERED.value):
    message: str = ""


class Delivery(Event, tag=EventType.DELIVERY.value):
    message: str = ""
    delivery: str = ""  # retrying: <reason> (attempt k of N), sent, delivered, read, failed: ...


class Csat(Event, tag=EventType.CSAT.value):
    score: int = 0
    comment: str = ""
    via: str = ""


class CsatSent(Event, tag=EventType.CSAT_SENT.value):
    pass


class CsatRefused(Event, tag=EventType.CSAT_REFUSED.value):
    via: str = ""
    reason: str = ""


class CustomerChanged(Event, tag=EventType.CUSTOMER_CHANGED.value):
    from_: str = msgspec.field(default="", name="from")  # customer ids
    to: str = ""


class DueChanged(Event, tag=EventType.DUE_CHANGED.value):
    """A ticket's next SLA due time moved (a reply, a follow-up, a pause ended, a transfer):
    the queue order and the ticket's row follow it. A new ticket's first one comes with it
    from intake, so opening a ticket writes none."""

    due_at: str = ""  # ISO time


class SlaStep(Event, kw_only=True):
    """A ladder step fired on one target (sla_commit.lua)."""

    target: str = ""  # first_response, next_response, resolution
    due: str = ""  # ISO time
    late_s: int = 0
    late: str = ""
    at: str = ""
    step: str = ""
    policy: str = ""
    actions: str = ""


class SlaWarned(SlaStep, tag=EventType.SLA_WARNED.value):
    pass


class SlaBreached(SlaStep, tag=EventType.SLA_BREACHED.value):
    pass


class Notified(Event, tag=EventType.NOTIFIED.value):
    target: str = ""
    via: str = ""


class Presence(Event, tag=EventType.PRESENCE.value):
    status: str = ""


class TokenCreated(Event, tag=EventType.TOKEN_CREATED.value):
    agent: str = ""


class TokenRevoked(Event, tag=EventType.TOKEN_REVOKED.value):
    agent: str = ""
    count: int = 0


class Quarantined(Event, tag=EventType.QUARANTINED.value):
    item: str = ""
    reason: str = ""


class CallAnswered(Event, tag=EventType.CALL_ANSWERED.value):
    agent: str = ""  # the one agent whose console shows it
    call: str = ""  # <pbx>:<call id>, for GET /v1/cti/calls/{call}
    customer: str = ""


class Login(Event, tag=EventType.LOGIN.value):
    agent: str = ""
    source: str = ""  # directory
    ip: str = ""


class LoginFailed(Event, tag=EventType.LOGIN_FAILED.value):
    user: str = ""  # the name as typed (display-safe, at most 64 characters)
    reason: str = ""
    ip: str = ""


class LoginLocked(Event, tag=EventType.LOGIN_LOCKED.value):
    user: str = ""
    ip: str = ""


class Logout(Event, tag=EventType.LOGOUT.value):
    agent: str = ""


class AccessRevoked(Event, tag=EventType.ACCESS_REVOKED.value):
    agent: str = ""
    reason: str = ""
    sessions: int = 0
    released: int = 0


class Released(Event, tag=EventType.RELEASED.value):
    agent: str = ""
    reason: str = ""


class Resolved(Event, tag=EventType.RESOLVED.value):
    pass


class Closed(Event, tag=EventType.CLOSED.value):
    pass


class Reopened(Event, tag=EventType.REOPENED.value):
    pass


AnyEvent = (
    TicketOpened | Routed | MessageAdded | MessageEdited | AutoReplyIgnored | StatusChanged
    | Assigned | Transferred | Escalated | Merged | PriorityChanged | Tagged | Replied | Noted
    | Acknowledged | StatusReplied | Delivery | Csat | CsatSent | CsatRefused | CustomerChanged
    | SlaWarned | SlaBreached | Notified | Presence | TokenCreated | TokenRevoked | Quarantined
    | Resolved | Closed | Reopened | CallAnswered | Login | LoginFailed | LoginLocked | Logout
    | AccessRevoked | Released | GuideAnswered | DueChanged
)  # fmt: skip
STRUCTS: dict[EventType, type[Event]] = {
    EventType(cls.__struct_config__.tag): cls for cls in AnyEvent.__args__
}


def decode(fields: dict[str, Any]) -> Event:
    """One stream entry (strings, as Redis returns them) as its struct; raises
    msgspec.ValidationError for an unknown type or a field that does not convert."""
    return msgspec.convert(fields, AnyEvent, strict=False)
