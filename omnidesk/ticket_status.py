"""Track my request: a ticket's public status, for the customer it belongs to only.

`TicketStatus.for_contact(ticket_id, contact)` answers with a `PublicStatus` when the e-mail
or phone given is one the ticket came in with (`Ticket.contacts`: the sender's identities,
for the web form the e-mail and phone typed into it), and None otherwise: for no such
ticket, a wrong contact, or a contact that is not an e-mail or phone alike, so a caller has
one answer to give and proves nothing. Other identities of the ticket's customer do not
count: a customer record can gather identities nobody verified. `for_identities` is the same
check for a sender whose identity a channel already vouched for (a Telegram user id, a
WhatsApp number).

A ticket is read from Redis while it is hot and from PostgreSQL once it has left (evicted).
Nothing here names an internal queue: the queue's `public_title` (ar/en) from config, or a
neutral title when it has none. `render_text` writes the status as a short chat message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from omnidesk.config import QueueConfig
from omnidesk.i18n import N_, in_every_language, translator
from omnidesk.model import Identity, IdentityKind, Status, Ticket
from omnidesk.replies import data
from omnidesk.store import TICKET_ID, Store

log = logging.getLogger("omnidesk.ticket_status")

Lang = Literal["ar", "en"]

# The title shown for a queue with no `public_title`: its own title or name may say more
# than a customer should read (an investigation team, a fraud desk).
NEUTRAL_TITLE: dict[str, str] = in_every_language(N_("Customer service"))

# status -> msgid of what a customer reads (the English catalogue too has its text)
STATUS_TEXT: dict[str, str] = {
    "new": N_("Received"),
    "open": N_("In progress"),
    "pending_customer": N_("Waiting for your reply"),
    # not "Resolved": the reports' column of that name is "المحلولة" in Arabic, not "تم الحل"
    "resolved": N_("Resolved (a request's status)"),
    "closed": N_("Closed"),
}
# How the chat reply writes a time (in Riyadh): the same in both languages, Latin digits.
TIME_PATTERN = "yyyy-MM-dd HH:mm"

DIGITS = str.maketrans({chr(0x0660 + i): str(i) for i in range(10)}) | str.maketrans(
    {chr(0x06F0 + i): str(i) for i in range(10)}
)
# A ticket number as a customer types it: any case, Arabic-Indic digits, a leading '#',
# spaces or an Arabic tatweel around the dashes are forgiven.
_DASH = r"\s*[-\u2010-\u2015\u0640]\s*"
# Longer than this, a text is more than a ticket number, however spaced ("# OD - 2026 - 1").
TICKET_NUMBER_MAX = 64
_TICKET_NUMBER = re.compile(rf"#?\s*OD{_DASH}(\d{{4}}){_DASH}(\d{{1,12}})")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


class PublicStatus(msgspec.Struct, kw_only=True):
    """What a customer may read about their ticket; times are aware datetimes (UTC)."""

    ticket_id: str
    status: str
    status_text: dict[str, str]
    queue_title: dict[str, str]
    updated_at: datetime
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket_id,
            "status": self.status,
            "status_text": self.status_text,
            "queue": self.queue_title,
            "updated_at": self.updated_at.isoformat(),
            "first_response_due": _iso(self.first_response_due),
            "resolution_due": _iso(self.resolution_due),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def ticket_number(text: str) -> str | None:
    """The ticket id when `text` is a ticket number on its own ("OD-2026-000123",
    "#od-٢٠٢٦-١٢٣"), canonical (``OD-2026-000123``); None for anything else."""
    plain = (text or "").strip()
    if len(plain) > TICKET_NUMBER_MAX:  # asked of every chat message: a long one ends here
        return None
    plain = plain.translate(DIGITS).upper()
    found = _TICKET_NUMBER.fullmatch(plain)
    if found is None:
        return None
    return f"OD-{found.group(1)}-{int(found.group(2)):06d}"


def contact_keys(contact: str) -> set[str]:
    """The identity keys (``email:a@b``, ``phone:+966...``, ``whatsapp:966...``) a contact the
    customer typed may match: an e-mail compared without case, a phone in E.164 (a Saudi
    number by default, Arabic-Indic digits accepted). Empty when it is neither."""
    text = (contact or "").strip()
    if not text or len(text) > 320:
        return set()
    if _EMAIL.fullmatch(text):
        return {f"email:{text.lower()}"}
    from connectors.base_normalize import e164

    phone = e164(text, "SA")
    if phone is None:
        return set()
    return {f"phone:{phone}", f"whatsapp:{phone.lstrip('+')}", f"whatsapp:{phone}"}


def identity_keys(identities: Iterable[Identity]) -> set[str]:
    """Identity keys normalized as `contact_keys` makes them (a phone also under its
    WhatsApp spellings), so a customer's and a sender's can be compared."""
    out: set[str] = set()
    for ident in identities:
        kind, value = ident.kind.value, ident.value
        if kind == "email":
            out.add(f"email:{value.lower()}")
        elif kind in ("phone", "whatsapp"):
            out.add(f"{kind}:{value}")
            out |= {k for k in contact_keys(value) if not k.startswith("email:")}
        else:
            out.add(f"{kind}:{value}")
    return out


def contact_identities(contacts: Iterable[str]) -> list[Identity]:
    """A ticket's contacts (identity keys, `Ticket.contacts`) as identities; a key of an
    unknown kind is left out."""
    out = []
    for key in contacts:
        kind, sep, value = str(key).partition(":")
        if sep and value and kind in IdentityKind._value2member_map_:
            out.append(Identity(kind=IdentityKind(kind), value=value))
    return out


def contact_identity_keys(contacts: Iterable[str]) -> set[str]:
    """A ticket's contacts normalized as `identity_keys` makes them."""
    return identity_keys(contact_identities(contacts))


def status_text(status: str) -> dict[str, str]:
    """What a customer reads for a ticket status, in both languages (an unknown one is shown
    as in progress)."""
    return in_every_language(STATUS_TEXT.get(status, STATUS_TEXT["open"]))


def queue_title(queues: Mapping[str, QueueConfig], queue: str) -> dict[str, str]:
    """The queue's `public_title`, completed from the neutral one where a language is
    missing; the neutral title for a queue with none (or no longer configured)."""
    cfg = queues.get(queue)
    title = getattr(cfg, "public_title", None) if cfg is not None else None
    if not title:
        return dict(NEUTRAL_TITLE)
    return {lang: title.get(lang) or NEUTRAL_TITLE[lang] for lang in ("ar", "en")}


def queue_name(queues: Mapping[str, QueueConfig], queue: str, lang: str) -> str:
    """`queue_title` in one language (English for "en", else Arabic): the `{queue}` of a
    message a customer reads (a receipt, an agent's template)."""
    return queue_title(queues, queue)["en" if lang == "en" else "ar"]


@dataclass
class TicketStatus:
    """Looks a ticket up for its customer. `records` is omnidesk.db.records.Records (or
    anything with `connection()`); without it, a ticket that left Redis is unknown."""

    store: Store
    queues: Mapping[str, QueueConfig]
    records: Any = None

    def for_contact(self, ticket_id: str, contact: str) -> PublicStatus | None:
        return self.for_identities(ticket_id, contact_keys(contact))

    def for_identities(self, ticket_id: str, keys: Iterable[str]) -> PublicStatus | None:
        """The status when one of `keys` (``kind:value``) is one of the ticket's own
        contacts; None otherwise. The ticket is still looked up when `keys` is empty, so a
        bad contact costs what a wrong one does."""
        wanted = set(keys)
        tid = ticket_number(ticket_id) or (ticket_id or "").strip()
        if not TICKET_ID.fullmatch(tid):
            return None
        found = self._hot(tid) or self._cold(tid)
        if found is None:
            return None
        ticket, owners, dues = found
        if not wanted or not (wanted & owners):
            return None
        return PublicStatus(
            ticket_id=ticket.id,
            status=ticket.status.value,
            status_text=status_text(ticket.status.value),
            queue_title=queue_title(self.queues, ticket.queue),
            updated_at=ticket.updated_at,
            first_response_due=dues.get("first_response"),
            resolution_due=dues.get("resolution"),
        )

    # ------------------------------------------------------------ Redis

    def _hot(self, tid: str) -> tuple[Ticket, set[str], dict[str, datetime]] | None:
        ticket = self.store.get_ticket(tid)
        if ticket is None:
            return None
        return ticket, contact_identity_keys(ticket.contacts), self._dues(tid, ticket.status)

    def _dues(self, tid: str, status: Status) -> dict[str, datetime]:
        """The running SLA clocks' due times (a paused or stopped clock promises nothing)."""
        if not status.is_open:
            return {}
        from omnidesk.sla.codec import unpack_state
        from omnidesk.sla.records import slot, split_record

        bucket, field = slot(tid)
        try:
            raw = self.store.binary().hget(self.store.keys.sla_bucket(bucket), field)
            if not raw:
                return {}
            _, packed = split_record(data(raw))
            state = unpack_state(packed, tid)
        except Exception as exc:  # the status still answers without the clocks
            log.warning("status of %s: SLA state unreadable: %s", tid, exc)
            return {}
        return {
            target: clock.due_at
            for target, clock in state.clocks.items()
            if clock.state == "running" and clock.due_at is not None
        }

    # ------------------------------------------------------------ PostgreSQL

    def _cold(self, tid: str) -> tuple[Ticket, set[str], dict[str, datetime]] | None:
        """A ticket only the records hold: resolved or closed, so no clock is running."""
        if self.records is None:
            return None
        with self.records.connection() as conn:
            row = conn.execute(
                "SELECT id, customer_id, channel, account, queue, status, created_at, updated_at,"
                " data->'contacts' FROM tickets WHERE id = %s",
                (tid,),
            ).fetchone()
        if row is None:
            return None
        names = ("id", "customer_id", "channel", "account", "queue", "status")
        fields: dict[str, Any] = dict(zip(names, row[:6], strict=True))
        contacts = row[8] if isinstance(row[8], list) else []
        ticket = msgspec.convert(
            {**fields, "created_at": row[6], "updated_at": row[7], "contacts": contacts},
            Ticket,
            strict=False,
        )
        return ticket, contact_identity_keys(ticket.contacts), {}


# ---------------------------------------------------------------- the chat message


def render_text(status: PublicStatus, lang: Lang = "ar") -> str:
    """The status as a short message in `lang`, times in Riyadh time."""
    tr = translator(lang)

    def when(moment: datetime) -> str:
        return tr.datetime(moment, TIME_PATTERN)

    lines = [
        tr._("Request {ticket}: {status}").format(
            ticket=status.ticket_id, status=status.status_text[lang]
        ),
        tr._("Handled by: {queue}").format(queue=status.queue_title[lang]),
        tr._("Last update: {time} (Riyadh time)").format(time=when(status.updated_at)),
    ]
    if status.first_response_due:
        due = when(status.first_response_due)
        lines.append(tr._("First response due by: {time}").format(time=due))
    if status.resolution_due:
        due = when(status.resolution_due)
        lines.append(tr._("Resolution due by: {time}").format(time=due))
    return "\n".join(lines)


def render_both(status: PublicStatus, first: Lang = "ar") -> str:
    """Both languages, `first` on top: a chat reply to a sender whose language is unknown."""
    other: Lang = "en" if first == "ar" else "ar"
    return f"{render_text(status, first)}\n\n{render_text(status, other)}"
