"""Web-form submission JSON -> Inbound, with strict validation. Pure apart from one fallback:
without `received_at` (when the endpoint took the POST) the current time is the message's.
A `submitted_at` in the form is the browser's clock, so it is kept only as `sent_at`.

Every bad field is named in one error line, e.g.
`web form: email: not a valid address; message: required`. Unknown fields are rejected.
The error (`FormInvalid`) also carries each problem as (field, code, params), so the HTTP
answer can say it per field in the submitter's language (omnidesk/webform_text.py).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec

from connectors.base_normalize import (
    MAX_JSON_BYTES,
    apply_text_hints,
    e164,
    load_json,
    printable,
)
from omnidesk.errors import PayloadError
from omnidesk.model import (
    Attachment,
    Author,
    Channel,
    Identity,
    IdentityKind,
    Inbound,
    Segment,
    utcnow,
)

# field -> maximum length (characters)
_STRINGS = {
    "name": 200,
    "email": 254,
    "phone": 32,
    "subject": 300,
    "message": 20_000,
    "service": 100,
    "region": 100,
    "segment": 20,
    "submission_id": 128,
    "external_id": 128,
    "submitted_at": 40,
}
_FIELDS = frozenset(_STRINGS) | {"attachments"}
_ATTACHMENT_FIELDS = frozenset({"filename", "content_type", "size", "sha256"})
_MAX_ATTACHMENTS = 20
_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
_SEGMENTS = {
    "consumer": Segment.CONSUMER,
    "individual": Segment.CONSUMER,
    "business": Segment.BUSINESS,
    "investor": Segment.BUSINESS,
}
_EMAIL = re.compile(
    r"[^@\s\"(),:;<>\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251})\.[A-Za-z]{2,63}"
)
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Problem(NamedTuple):
    """One bad field: `code` names what is wrong (unknown_field, not_string, too_long,
    invalid_email, invalid_phone, required, contact_required, invalid_segment,
    invalid_time, invalid_id, invalid_attachments); `limit` is a length or count."""

    field: str
    code: str
    text: str  # the English line part, as the one-line error has always said it
    limit: int = 0


class FormInvalid(PayloadError):
    """A submission with bad fields; `problems` says which and why."""

    def __init__(self, problems: list[Problem]) -> None:
        line = "; ".join(f"{p.field}: {p.text}" for p in problems)
        super().__init__(f"web form: {line}", reason="invalid_form")
        self.problems = problems


def _strings(form: dict[str, Any], problems: list[Problem]) -> dict[str, str]:
    """The form's text fields, stripped; a problem for each one not a string or too long."""
    values: dict[str, str] = {}
    for field, limit in _STRINGS.items():
        value = form.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(Problem(field, "not_string", "must be a string"))
        elif len(value) > limit:
            problems.append(Problem(field, "too_long", f"longer than {limit} characters", limit))
        elif value.strip():
            values[field] = value.strip()
    return values


def _segment(values: dict[str, str], problems: list[Problem]) -> Segment:
    if "segment" not in values:
        return Segment.UNKNOWN
    segment = _SEGMENTS.get(values["segment"].lower(), Segment.UNKNOWN)
    if segment == Segment.UNKNOWN:
        problems.append(Problem("segment", "invalid_segment", "must be consumer or business"))
    return segment


def _sent_at(values: dict[str, str], problems: list[Problem]) -> datetime | None:
    """`submitted_at` in UTC (a time without a zone is taken as UTC)."""
    if "submitted_at" not in values:
        return None
    try:
        sent_at = datetime.fromisoformat(values["submitted_at"])
        if sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=UTC)
        return sent_at.astimezone(UTC)
    except (ValueError, OverflowError):
        problems.append(Problem("submitted_at", "invalid_time", "not an ISO 8601 time"))
        return None


def normalize(
    payload: bytes | str | dict,
    *,
    account: str = "web",
    max_bytes: int = MAX_JSON_BYTES,
    received_at: datetime | None = None,
) -> Inbound:
    """One submission received at `received_at` as an Inbound; a PayloadError naming every
    bad field otherwise."""
    try:
        form = load_json(payload, max_bytes=max_bytes)
    except PayloadError as exc:
        raise PayloadError(f"web form: {exc}", reason=exc.reason) from None
    problems: list[Problem] = []
    unknown = sorted(k for k in form if k not in _FIELDS)
    problems.extend(Problem(printable(k), "unknown_field", "unknown field") for k in unknown[:5])
    values = _strings(form, problems)
    email = values.get("email", "").lower()
    if email and not _EMAIL.fullmatch(email):
        problems.append(Problem("email", "invalid_email", "not a valid address"))
    phone = ""
    if "phone" in values:
        phone = e164(values["phone"], "SA") or ""
        if not phone:
            problems.append(Problem("phone", "invalid_phone", "not a valid phone number"))
    named = {p.field for p in problems}
    if "message" not in values and "message" not in named:
        problems.append(Problem("message", "required", "required"))
    if not email and not phone and not named & {"email", "phone"}:
        problems.append(Problem("email", "contact_required", "email or phone required"))
    segment = _segment(values, problems)
    sent_at = _sent_at(values, problems)
    given_id = values.get("submission_id") or values.get("external_id")
    if given_id and not _ID.fullmatch(given_id):
        problems.append(
            Problem("submission_id", "invalid_id", "only letters, digits and . _ : - allowed")
        )
    attachments = _attachments(form.get("attachments"), problems)
    if problems:
        raise FormInvalid(problems)

    identities = []
    if email:
        identities.append(Identity(kind=IdentityKind.EMAIL, value=email))
    if phone:
        identities.append(Identity(kind=IdentityKind.PHONE, value=phone))
    inbound = Inbound(
        channel=Channel.WEB,
        account=account,
        external_id=given_id or _content_id(form),
        received_at=received_at or utcnow(),
        sent_at=sent_at,
        author=Author(name=values.get("name", ""), identities=identities),
        subject=values.get("subject", ""),
        text=values["message"],
        attachments=attachments,
        segment_hint=segment,
        region_hint=values.get("region"),
        service_hint=values.get("service"),
        thread_keys=[],
        meta={"form": "contact"},
        content_id=not given_id,
    )
    inbound.message_keys = [f"web:{inbound.external_id}"]
    if inbound.content_id:  # the same form in a new POST after a resolve reopens the ticket
        inbound.thread_keys = list(inbound.message_keys)
    apply_text_hints(inbound)
    return inbound


def _content_id(form: dict[str, Any]) -> str:
    """sha256 of the canonical JSON: the same submission posted twice while its ticket is
    open dedupes to that ticket (a double click, a browser retry); a redelivery of one POST
    is known by its receive time too, and stays a duplicate (omnidesk/intake.py)."""
    try:
        canonical = msgspec.json.encode(form, order="sorted")
    except (msgspec.EncodeError, TypeError, ValueError, OverflowError):
        canonical = repr(sorted(form.items(), key=lambda kv: kv[0])).encode("utf-8", "replace")
    return hashlib.sha256(canonical).hexdigest()


def _attachments(raw: Any, problems: list[Problem]) -> list[Attachment]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(Problem("attachments", "invalid_attachments", "must be a list"))
        return []
    if len(raw) > _MAX_ATTACHMENTS:
        problems.append(
            Problem("attachments", "too_many", f"more than {_MAX_ATTACHMENTS}", _MAX_ATTACHMENTS)
        )
        return []
    found = []
    for i, item in enumerate(raw):
        at = f"attachments[{i}]"

        def bad(part: str, text: str, at: str = at) -> None:
            problems.append(Problem(f"{at}{part}", "invalid_attachments", text))

        if not isinstance(item, dict):
            bad("", "must be an object")
            continue
        for key in sorted(k for k in item if k not in _ATTACHMENT_FIELDS)[:3]:
            bad(f".{printable(key)}", "unknown field")
        filename = item.get("filename")
        if not isinstance(filename, str) or not filename.strip() or len(filename) > 255:
            bad(".filename", "required, at most 255 characters")
        content_type = item.get("content_type", "application/octet-stream")
        if not isinstance(content_type, str) or not _CONTENT_TYPE.fullmatch(content_type.lower()):
            bad(".content_type", "not a media type")
        size = item.get("size", 0)
        if (
            isinstance(size, bool)
            or not isinstance(size, int)
            or not (0 <= size <= _MAX_ATTACHMENT_BYTES)
        ):
            bad(".size", f"must be an integer from 0 to {_MAX_ATTACHMENT_BYTES}")
        sha256 = item.get("sha256", "")
        if not isinstance(sha256, str) or (sha256 and not _SHA256.fullmatch(sha256.lower())):
            bad(".sha256", "must be 64 hex digits")
        if isinstance(filename, str) and not any(p.field.startswith(at) for p in problems):
            found.append(
                Attachment(
                    filename=filename.strip(),
                    content_type=content_type.lower(),
                    size=size,
                    sha256=sha256.lower(),
                )
            )
    return found
