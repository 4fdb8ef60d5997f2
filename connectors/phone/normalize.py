"""A call as a ticket's message: the JSON that omnidesk/agents/cti_desk.py writes for a
call an agent opens a ticket for, attaches to a ticket, or that comes back as a callback.

The PBX's events never come here raw: the CTI endpoint has already checked their signature,
read the caller's number as E.164 and decided what the call becomes. What this function
adds is the one thing every channel shares, the Inbound, so routing, SLA clocks and the
records treat a call like any other message. Pure: no I/O.

Payload: {"call": id, "purpose": "ticket"|"attach"|"callback", "at": ISO time of the call,
"caller": "+9665...", "name": str, "subject": str, "text": str, "ticket": "OD-..." (attach),
"recording": str}. The external id is call + purpose, so the same call taken in again is a
duplicate, while a callback and the ticket an agent opens later are two messages.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from omnidesk.errors import PayloadError
from omnidesk.model import Attachment, Author, Channel, Identity, IdentityKind, Inbound

PURPOSES = frozenset({"ticket", "attach", "callback"})


def _text(data: dict[str, object], name: str, *, required: bool = False) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or (required and not value):
        raise PayloadError(f"phone: {name}: a non-empty string is required", reason="bad_field")
    return value


def _moment(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise PayloadError("phone: at: not an ISO time", reason="bad_field") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def normalize(payload: bytes | str | dict[str, object], *, account: str = "pbx") -> Inbound:
    """One call's Inbound; PayloadError naming the field when the payload is not one."""
    try:
        data = json.loads(payload) if isinstance(payload, bytes | str) else payload
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("phone: not JSON", reason="not_json") from None
    if not isinstance(data, dict):
        raise PayloadError("phone: not a JSON object", reason="not_json")
    call = _text(data, "call", required=True)
    purpose = _text(data, "purpose", required=True)
    if purpose not in PURPOSES:
        raise PayloadError(f"phone: purpose: one of {sorted(PURPOSES)}", reason="bad_field")
    caller = _text(data, "caller")
    identities = [Identity(kind=IdentityKind.PHONE, value=caller)] if caller else []
    ticket = _text(data, "ticket")
    if purpose == "attach" and not ticket:
        raise PayloadError("phone: ticket: required to attach a call", reason="bad_field")
    recording = _text(data, "recording")
    attachments = (
        [Attachment(filename="voicemail", content_type="audio/*", kind="voicemail", ref=recording)]
        if recording
        else []
    )
    return Inbound(
        channel=Channel.PHONE,
        account=account,
        external_id=f"{call}:{purpose}",
        received_at=_moment(_text(data, "at", required=True)),
        author=Author(name=_text(data, "name"), identities=identities),
        subject=_text(data, "subject"),
        text=_text(data, "text"),
        thread_keys=[f"ticket:{ticket}"] if ticket else [],
        message_keys=[f"phone:call:{call}"],
        attachments=attachments,
        meta={"call_id": call},
    )
