"""Walk a parsed message once: body parts to decode, attachments to describe, a DSN to read.

A report (DSN, ARF, MDN) is read only when the message itself is a multipart/report.

Attachments are hashed and measured, never executed or unpacked; a forwarded message
(message/rfc822) is one attachment, not walked into.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message

from connectors.email.charsets import decode_bytes, decode_header, unescape_surrogates
from omnidesk.model import Attachment, Bounce

_MAX_DEPTH = 40
_MAX_PARTS = 500
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")
_REPORT_PARTS = {  # RFC 3464 / 6533 DSN, RFC 5965 ARF, RFC 8098 / 6533 MDN
    "message/delivery-status": "delivery-status",
    "message/global-delivery-status": "delivery-status",
    "message/feedback-report": "feedback-report",
    "message/disposition-notification": "disposition-notification",
    "message/global-disposition-notification": "disposition-notification",
}


@dataclass
class Body:
    plain: list[Message] = field(default_factory=list)
    html: list[Message] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    attachment_parts: list[Message] = field(default_factory=list)  # in step with attachments
    bounce: Bounce | None = None
    # the machine-readable part of a report: delivery-status (DSN), feedback-report (ARF),
    # disposition-notification (MDN); None for a person's mail
    report: str | None = None
    parts: list[Message] = field(default_factory=list)  # every part seen, for its defects


def collect(msg: Message, defects: list[str]) -> Body:
    """Sort the parts of `msg` into body candidates and attachments. Parser defects are
    read from `body.parts` after decoding, which adds some (bad base64 padding)."""
    body = Body(report=report_kind(msg))
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > _MAX_PARTS:
            defects.append("TooManyParts")
            break
        body.parts.append(part)
        ctype = part.get_content_type()
        if not ctype.isascii():  # raw 8-bit bytes in Content-Type: the type is unreadable
            ctype = "application/octet-stream"
        elif ctype.startswith("multipart/") and not part.is_multipart():
            ctype = "text/plain"  # no boundary to split on: show the body as it came
        if ctype in _REPORT_PARTS:
            if depth == 1 and body.report is not None:  # the report's own machine fields
                if ctype == "message/delivery-status":
                    body.bounce = _bounce(part) or body.bounce
                continue
            # a report forwarded inside a person's mail: something they attached
            body.attachments.append(_attachment(part, ctype))
            body.attachment_parts.append(part)
            continue
        if part.is_multipart():
            if ctype == "message/rfc822" and part is not msg:
                body.attachments.append(_attachment(part, ctype))
                body.attachment_parts.append(part)
                continue
            if depth >= _MAX_DEPTH:
                defects.append("NestingTooDeep")
                continue
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((c, depth + 1) for c in reversed(children) if isinstance(c, Message))
            continue
        disposition = (part.get_content_disposition() or "").lower()
        is_text = ctype in ("text/plain", "text/html") and disposition != "attachment"
        if is_text and not _has_filename(part):
            (body.plain if ctype == "text/plain" else body.html).append(part)
            continue
        body.attachments.append(_attachment(part, ctype))
        body.attachment_parts.append(part)
    return body


def report_kind(msg: Message) -> str | None:
    """The report this message itself is (RFC 6522), or None. Only the top-level
    Content-Type counts: a bounce a customer forwards as an attachment is their mail."""
    if msg.get_content_type() != "multipart/report" or not msg.is_multipart():
        return None
    kind = str(msg.get_param("report-type") or "").strip().lower()
    if kind in _REPORT_PARTS.values():
        return kind
    children = msg.get_payload()  # else the second part names it
    if isinstance(children, list) and len(children) > 1 and isinstance(children[1], Message):
        return _REPORT_PARTS.get(children[1].get_content_type())
    return None


def _has_filename(part: Message) -> bool:
    raw = f"{part.get('content-disposition', '')} {part.get('content-type', '')}".lower()
    if "name" not in raw:  # skip the slow parameter parser for the usual body part
        return False
    return bool(part.get_param("filename", header="content-disposition") or part.get_param("name"))


def _attachment(part: Message, ctype: str) -> Attachment:
    data = content(part)
    disposition = (part.get_content_disposition() or "").lower()
    cid_image = ctype.startswith("image/") and part.get("content-id") is not None
    inline = disposition == "inline" or (cid_image and disposition != "attachment")
    return Attachment(
        filename=filename(part),
        content_type=ctype,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        inline=inline,
    )


def content(part: Message) -> bytes:
    if part.is_multipart():  # message/rfc822: the embedded message as it would be saved
        try:
            embedded = part.get_payload(0)
            return embedded.as_bytes() if isinstance(embedded, Message) else b""
        except (TypeError, ValueError, LookupError, UnicodeError, IndexError, AttributeError):
            return b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def filename(part: Message) -> str:
    """The attachment's name, RFC 2231 and RFC 2047 decoded, with any path stripped."""
    value = part.get_param("filename", header="content-disposition")
    if not value:
        value = part.get_param("name")
    if not value:
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            subject = decode_header(inner.get("subject")) if isinstance(inner, Message) else ""
            return f"{subject or 'message'}.eml"[:255]
        return ""
    if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded text)
        charset, _, text = value
        raw = text.encode("raw-unicode-escape", "replace")
        name = decode_bytes(raw, charset or None, header=True)[0]
    else:
        name = decode_header(unescape_surrogates(value).strip('"'))
    name = _UNSAFE_NAME.sub("", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255]


def _bounce(part: Message) -> Bounce | None:
    """The first failed (else first) recipient of a delivery-status report."""
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return None
    found: Bounce | None = None
    for block in blocks[1:] or blocks:
        if not isinstance(block, Message):
            continue
        recipient = block.get("final-recipient") or block.get("original-recipient") or ""
        recipient = unescape_surrogates(str(recipient)).split(";", 1)[-1].strip().strip("<>")
        bounce = Bounce(
            recipient=recipient.lower()[:320],
            status=unescape_surrogates(str(block.get("status") or "")).strip()[:32],
            action=unescape_surrogates(str(block.get("action") or "")).strip().lower()[:32],
        )
        if bounce.action == "failed":
            return bounce
        if found is None and (bounce.recipient or bounce.status):
            found = bounce
    return found
