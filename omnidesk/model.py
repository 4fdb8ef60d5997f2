"""The normalized model every part of Omnidesk shares.

Depends on nothing else in the project. Structs are msgspec structs so that
they serialize to and from JSON losslessly and fast (`to_json` / `from_json`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import msgspec


class Channel(StrEnum):
    EMAIL = "email"
    TELEGRAM = "telegram"
    TWITTER = "twitter"
    WHATSAPP = "whatsapp"
    WEB = "web"
    PHONE = "phone"  # a call from the communication centre's PBX (omnidesk/agents/cti.py)


class Priority(StrEnum):
    """Ticket priority; `rank` orders them (higher is more urgent)."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]

    def raised(self, steps: int = 1) -> Priority:
        order = list(Priority)
        return order[min(len(order) - 1, max(0, self.rank + steps))]


_PRIORITY_RANK = {p: i for i, p in enumerate(Priority)}


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING_CUSTOMER = "pending_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self in (Status.NEW, Status.OPEN, Status.PENDING_CUSTOMER)


class Segment(StrEnum):
    CONSUMER = "consumer"
    BUSINESS = "business"
    UNKNOWN = "unknown"


class Language(StrEnum):
    AR = "ar"
    EN = "en"
    MIXED = "mixed"
    UNKNOWN = "unknown"


class Flag(StrEnum):
    """Facts a normalizer saw about a message that rules and intake act on."""

    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    FEEDBACK_REPORT = "feedback_report"  # an abuse/feedback report (ARF, RFC 5965)
    READ_RECEIPT = "read_receipt"  # a disposition notification (MDN, RFC 8098)
    MAILING_LIST = "mailing_list"
    BULK = "bulk"  # Precedence: bulk/junk/list: sent to many (a list, a group), not by a machine
    EDITED = "edited"
    FORWARDED = "forwarded"
    REPLY = "reply"


# Sent by a machine, not a person: opens no ticket, starts no clock, gets no receipt.
MACHINE_FLAGS = frozenset({Flag.AUTO_REPLY, Flag.BOUNCE, Flag.FEEDBACK_REPORT, Flag.READ_RECEIPT})

# Actors that are the daemon's own parts, never a person: the CSAT survey is sent as a
# `replied` by "csat", SLA escalations are moves by "sla", and so on. They are nobody's
# reply, first response or transfer (the config refuses agents named like them).
SYSTEM_ACTORS = frozenset({
    "", "system", "csat", "sla", "omnidesk", "deliver", "intake", "assignment", "merge",
    "customer", "operator", "retention", "router", "cti", "login", "directory",
})  # fmt: skip


class IdentityKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    TELEGRAM = "telegram"
    TWITTER = "twitter"
    TWITTER_HANDLE = "twitter_handle"
    WHATSAPP = "whatsapp"


class Identity(msgspec.Struct, frozen=True):
    """One way to reach a customer: a normalized email, an E.164 phone, a user id."""

    kind: IdentityKind
    value: str

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.value}"


class Author(msgspec.Struct, kw_only=True):
    name: str = ""
    identities: list[Identity] = msgspec.field(default_factory=list)
    language_code: str | None = None  # as the channel reported it (Telegram's language_code)

    def identity(self, kind: IdentityKind) -> str | None:
        for ident in self.identities:
            if ident.kind == kind:
                return ident.value
        return None


class Attachment(msgspec.Struct, kw_only=True):
    filename: str = ""
    content_type: str = "application/octet-stream"
    size: int = 0
    sha256: str = ""
    inline: bool = False
    kind: str = ""  # channel media kind: photo, voice, sticker, location, ...
    ref: str = ""  # channel file id / media id, to fetch it later if needed


# Attachment.kind of a file the web form's own post carried (archived by its sha256): set
# by the runtime from RawPayload.uploads, never from what a form lists.
UPLOADED = "upload"


class Bounce(msgspec.Struct, kw_only=True):
    recipient: str = ""
    status: str = ""  # DSN status code, e.g. 5.1.1
    action: str = ""  # failed, delayed, ...


class Inbound(msgspec.Struct, kw_only=True):
    """One received customer message, as a normalizer saw it.

    `thread_keys` are keys this message may join an existing ticket by
    (In-Reply-To, References, a ticket reference, the Telegram chat);
    `message_keys` are keys later messages may refer back to (its Message-ID).
    Keys are namespaced strings such as ``email:<id@host>`` or ``ticket:OD-2026-000001``.
    """

    channel: Channel
    account: str
    external_id: str
    # When it reached us (see connectors/registry.py): the ticket's time and SLA start.
    received_at: datetime
    # When the sender says it was sent (an email's Date:, a web form's submitted_at): kept
    # as a fact for agents, never used as a clock, since the sender can write anything.
    sent_at: datetime | None = None
    author: Author = msgspec.field(default_factory=Author)
    subject: str = ""
    text: str = ""  # the new text, readable; from text/plain or converted HTML
    html_text: str = ""  # text converted from the HTML part, when there was one
    quoted: str = ""  # quoted reply history, kept but shown after the new part
    signature: str = ""
    language: Language = Language.UNKNOWN
    thread_keys: list[str] = msgspec.field(default_factory=list)
    message_keys: list[str] = msgspec.field(default_factory=list)
    attachments: list[Attachment] = msgspec.field(default_factory=list)
    flags: list[Flag] = msgspec.field(default_factory=list)
    bounce: Bounce | None = None
    edit_of: str | None = None  # external_id of the message this one edits
    segment_hint: Segment = Segment.UNKNOWN
    region_hint: str | None = None
    service_hint: str | None = None
    hints: dict[str, str] = msgspec.field(default_factory=dict)  # e.g. cr_number, business_domain
    defects: list[str] = msgspec.field(default_factory=list)  # parse defects, never fatal
    raw_ref: str | None = None  # sha256 of the archived raw payload
    meta: dict[str, str] = msgspec.field(default_factory=dict)  # channel extras (chat_id, ...)
    # external_id is a hash of the content (a web form sent without its own id), not an id
    # the sender or platform gave: the same content again is a duplicate only while the
    # ticket it opened is open (intake.py says what happens after).
    content_id: bool = False

    def has_flag(self, flag: Flag) -> bool:
        return flag in self.flags

    @property
    def is_machine_mail(self) -> bool:
        return not MACHINE_FLAGS.isdisjoint(self.flags)

    @property
    def dedupe_key(self) -> str:
        return f"{self.channel.value}:{self.account}:{self.external_id}"


class RawPayload(msgspec.Struct, kw_only=True):
    """A payload as a connector received it, before normalizing; what `ingest` carries."""

    channel: Channel
    account: str
    payload: bytes
    received_at: datetime
    source: str = ""  # where it came from, for logs and the quarantine: "imap:INBOX:42", a path
    # sha256 of the files the server itself received with this payload and archived (a
    # multipart web form's): only those of its attachments are served to agents
    uploads: list[str] = msgspec.field(default_factory=list)

    @property
    def sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.payload).hexdigest()


class Outbound(msgspec.Struct, kw_only=True):
    """A reply to send on the channel and account a ticket came in on."""

    id: str  # our message id, for delivery receipts
    ticket_id: str
    channel: Channel
    account: str
    text: str
    subject: str = ""
    html: str | None = None
    to: list[Identity] = msgspec.field(default_factory=list)
    in_reply_to: str | None = None  # channel message the reply answers (email Message-ID, ...)
    references: list[str] = msgspec.field(default_factory=list)
    meta: dict[str, str] = msgspec.field(default_factory=dict)  # chat_id, conversation kind, ...


class Receipt(msgspec.Struct, kw_only=True):
    """What a channel said about one Outbound."""

    outbound_id: str
    status: str  # sent, failed, refused
    external_id: str | None = None
    detail: str = ""
    # every id the channel gave, when the message went out in parts (the first is
    # external_id): each part's later status (a WhatsApp wamid's) leads back to the message
    external_ids: list[str] = msgspec.field(default_factory=list)


class Skipped(msgspec.Struct, kw_only=True):
    """A well-formed payload that carries no customer message (a reaction, a status)."""

    reason: str
    receipt: dict[str, Any] | None = None  # delivery receipt for an outbound message


class TraceStep(msgspec.Struct, kw_only=True):
    rule: str
    matched: bool
    reason: str  # which condition decided, in words


class Decision(msgspec.Struct, kw_only=True):
    """What the router decided for one ticket, with the trace of how."""

    queue: str
    priority: Priority = Priority.NORMAL
    sla_policy: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    segment: Segment | None = None
    region: str | None = None
    auto_reply: str | None = None  # template name
    rule: str | None = None  # id of the rule that set the queue; None for the default
    rules: list[str] = msgspec.field(default_factory=list)  # every rule that matched, in order
    trace: list[TraceStep] = msgspec.field(default_factory=list)


class Customer(msgspec.Struct, kw_only=True):
    id: str
    name: str = ""
    identities: list[Identity] = msgspec.field(default_factory=list)
    segment: Segment = Segment.UNKNOWN
    region: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    created_at: datetime = msgspec.field(default_factory=lambda: utcnow())


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    NOTE = "note"


class Message(msgspec.Struct, kw_only=True):
    id: str
    ticket_id: str
    direction: Direction
    channel: Channel
    created_at: datetime  # for a customer message, when it reached us
    sent_at: datetime | None = None  # the sender's own claim (Date:), shown, never a clock
    text: str = ""
    subject: str = ""
    author: str = ""  # customer name, or the agent id for out/note
    external_id: str | None = None
    account: str = ""  # the channel account it came in on (dedupe: channel:account:external_id)
    # external_id is only a hash of the content (a web form with no submission id): the
    # same content may come again later as a new message
    content_id: bool | None = None
    attachments: list[Attachment] = msgspec.field(default_factory=list)
    delivery: str | None = None  # queued, retrying: ..., sent, delivered, read, failed: ...
    raw_ref: str | None = None


class Ticket(msgspec.Struct, kw_only=True):
    id: str
    channel: Channel
    account: str
    customer_id: str
    created_at: datetime
    updated_at: datetime
    subject: str = ""
    preview: str = ""  # first lines of the first message, with IDs masked
    status: Status = Status.NEW
    queue: str = ""
    priority: Priority = Priority.NORMAL
    sla_policy: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    language: Language = Language.UNKNOWN
    segment: Segment = Segment.UNKNOWN
    region: str | None = None
    rule: str | None = None
    assignee: str | None = None
    thread_keys: list[str] = msgspec.field(default_factory=list)
    message_ids: list[str] = msgspec.field(default_factory=list)
    meta: dict[str, str] = msgspec.field(default_factory=dict)
    # the identity keys (``email:a@b``, ``phone:+966...``) the ticket came in with: its
    # status is told and its replies go to these only, never to every identity its
    # customer has (a customer record can gather identities nobody verified)
    contacts: list[str] = msgspec.field(default_factory=list)


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc_moment(text: str) -> datetime:
    """An ISO date or date-time, in UTC when it names no zone; ValueError when it is none."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


_T = TypeVar("_T")
_encoder = msgspec.json.Encoder()


def to_json(obj: Any) -> bytes:
    return _encoder.encode(obj)


def from_json(data: bytes | str, type_: type[_T]) -> _T:
    return msgspec.json.decode(data, type=type_)


def to_builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)
