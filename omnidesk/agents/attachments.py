"""Attachments an agent can open: the list for a ticket and the bytes of one, served so that
a customer's file can never run as a page of ours.

An attachment's id is ``<message id>.<n>``, n its place in the message's attachment list
(stable: the list is stored with the message, in Redis and in PostgreSQL). The bytes of an
e-mail attachment are taken from the archived raw message (connectors/email/extract.py),
picked by the sha256 normalize recorded. A Telegram or WhatsApp file is fetched from the
channel by its file/media id through the running connector (Bot API getFile; Graph's media
record and URL, checked against the sha256 WhatsApp announced). A file uploaded with a
multipart web form is read from the archive by its sha256, but only when that post itself
carried it (kind UPLOADED, set at intake from RawPayload.uploads): a sha256 a form merely
lists could be anyone's archived file. X media keys are kept but not fetched yet, and a
file a form only lists is not ours to serve: those are listed with `available: false` and
the reason.

Serving: only a short list of types a browser shows without running anything is served
inline (images but SVG, PDF, plain text), and only when the bytes start like that type;
anything else is `application/octet-stream` to save. Every answer carries nosniff and a
sandboxing Content-Security-Policy, and an RFC 6266 file name, ASCII plus UTF-8.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote

from omnidesk.agents.errors import NotFound
from omnidesk.archive import Archive
from omnidesk.errors import TooLarge, TransientError
from omnidesk.model import UPLOADED, Attachment, Channel, Message
from omnidesk.text import display_safe

# type -> the bytes such a file starts with (None: any); SVG is an image that runs scripts
INLINE_TYPES: dict[str, tuple[bytes, ...] | None] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
    "text/plain": None,
}
# a preview may be framed by the console (same origin), nothing in it runs or loads
INLINE_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; frame-ancestors 'self'"
DOWNLOAD_POLICY = "sandbox; default-src 'none'; frame-ancestors 'none'"
_ID = re.compile(r"(M-[0-9a-f]{1,16}-[0-9a-f]{12}|[A-Za-z0-9_-]{1,80})\.(\d{1,4})")
# characters no file system or header should get: controls, quotes, separators, markup
_NAME_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*;%`$]')
_ASCII_KEEP = re.compile(r"[^A-Za-z0-9._()\- ]")
_FALLBACK_EXT = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
    "application/pdf": ".pdf", "text/plain": ".txt",
}  # fmt: skip


# (file id, max bytes) -> the file: a connector's `download` (connectors/telegram)
Downloader = Callable[[str, int], Awaitable[bytes]]


class AttachmentUnavailable(NotFound):
    """The attachment is listed but its bytes cannot be had here (the reason says why)."""

    def __init__(self, message: str, code: str = "attachment_unavailable", **params: str) -> None:
        super().__init__(message, code, **params)  # one code the console words, for every cause


class AttachmentTooLarge(TooLarge):
    """Over `service.attachments.max_serve_bytes`: answered 413."""


class ChannelUnavailable(TransientError):
    """The channel did not give the file this time: answered 503, try again."""


def attachment_id(message_id: str, index: int) -> str:
    return f"{message_id}.{index}"


def parse_id(value: str) -> tuple[str, int]:
    match = _ID.fullmatch(value)
    if match is None:
        raise NotFound(f"no attachment {value[:100]!r}")
    return match.group(1), int(match.group(2))


class Unavailable(NamedTuple):
    """Why an attachment's bytes cannot be had: a stable `code` with its `params`, which a
    page words in its own language, and the English `text`."""

    code: str
    text: str
    params: dict[str, str]


def unavailable(
    message: Message, attachment: Attachment, reachable: bool = False
) -> Unavailable | None:
    """Why the bytes cannot be served, or None when they can. `reachable`: where they come
    from is there (the archived raw e-mail; a running connector of the message's channel
    and account, which fetches a file by its id)."""
    if attachment.kind in ("location", "contact"):
        kind = attachment.kind
        return Unavailable("not_a_file", f"a shared {kind}, not a file", {"kind": kind})
    if message.channel == Channel.EMAIL:
        if not message.raw_ref or not attachment.sha256:
            return Unavailable("not_archived", "the original message was not archived", {})
        if not reachable:
            return Unavailable(
                "archive_gone",
                "the original message is no longer kept (archive retention or erasure)",
                {},
            )
        return None
    if message.channel == Channel.WEB:
        if attachment.kind != UPLOADED or not attachment.sha256:
            return Unavailable(
                "form_listed_only", "the web form only listed this file; it did not send it", {}
            )
        if not reachable:
            return Unavailable(
                "upload_gone",
                "the uploaded file is no longer kept (archive retention or erasure)",
                {},
            )
        return None
    if not attachment.ref:
        return Unavailable("no_file_id", "the channel gave no file id", {})
    if reachable:
        return None
    channel = message.channel.value
    if message.channel in (Channel.TELEGRAM, Channel.WHATSAPP):
        return Unavailable(
            "connector_not_running",
            f"the {channel} connector {message.account!r} is not running here",
            {"channel": channel, "account": message.account or ""},
        )
    return Unavailable(
        "not_downloadable",
        f"kept on {channel}'s servers (media id recorded); downloading from "
        f"{channel} is not built yet",
        {"channel": channel},
    )


def unavailable_reason(
    message: Message, attachment: Attachment, reachable: bool = False
) -> str | None:
    """`unavailable`'s English text, or None when the bytes can be served."""
    why = unavailable(message, attachment, reachable)
    return why.text if why is not None else None


def describe(ticket_id: str, message: Message, reachable: bool = False) -> list[dict[str, Any]]:
    """The message's attachments as the API lists them, each with its download URL."""
    out = []
    for i, att in enumerate(message.attachments):
        aid = attachment_id(message.id, i)
        why = unavailable(message, att, reachable)
        item: dict[str, Any] = {
            "id": aid,
            "message_id": message.id,
            "filename": att.filename,
            "content_type": att.content_type,
            "size": att.size,
            "inline": att.inline,
            "kind": att.kind,
            "available": why is None,
            "url": f"/v1/tickets/{ticket_id}/attachments/{aid}",
        }
        if why is not None:
            item["reason"] = why.text
            item["reason_code"] = why.code
            item["reason_params"] = why.params
        out.append(item)
    return out


def listing(
    ticket_id: str, messages: list[Message], reachable: Callable[[Message], bool]
) -> list[dict[str, Any]]:
    ordered = sorted(messages, key=lambda m: m.created_at)
    return [item for m in ordered if m.attachments for item in describe(ticket_id, m, reachable(m))]


@dataclass(frozen=True)
class Served:
    data: bytes
    content_type: str  # as sent, charset included
    inline: bool
    filename: str
    headers: dict[str, str] = field(default_factory=dict)


def serve_as(declared: str, data: bytes) -> str | None:
    """The inline type to serve `data` as, or None (download as octet-stream): the declared
    type must be on the list and, for binary types, the bytes must start like one."""
    ctype = declared.split(";", 1)[0].strip().lower()
    if ctype not in INLINE_TYPES:
        return None
    magic = INLINE_TYPES[ctype]
    if magic is not None and not data.startswith(magic):
        return None
    if ctype == "image/webp" and data[8:12] != b"WEBP":
        return None
    return ctype


def safe_filename(name: str, content_type: str = "") -> str:
    """The name without controls, bidi overrides, paths, quotes or markup characters, no
    leading dots, at most 150 characters; a plain one when nothing is left."""
    cleaned = _NAME_UNSAFE.sub("_", display_safe(name)).strip(" .")
    cleaned = " ".join(cleaned.split())[:150].strip(" .")
    return cleaned or "attachment" + _FALLBACK_EXT.get(content_type, "")


def content_disposition(name: str, inline: bool) -> str:
    """RFC 6266: an ASCII `filename` for old clients, `filename*` (RFC 8187, UTF-8) with the
    real name, Arabic included."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    ascii_stem = _ASCII_KEEP.sub("_", stem).strip(" .")
    ascii_ext = _ASCII_KEEP.sub("", ext)[:10]
    ascii_name = ascii_stem if ascii_stem.strip("_ ") else "attachment"
    ascii_name += f".{ascii_ext}" if ascii_ext else ""
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def archived(archive: Archive | None, message: Message) -> bool:
    """The raw payload of the message is still in the archive (one stat)."""
    if archive is None or not message.raw_ref:
        return False
    try:
        return archive.path(message.raw_ref).is_file()
    except ValueError:  # not a sha256
        return False


@dataclass
class AttachmentFiles:
    """Reads attachment bytes from the raw archive; `max_bytes` is read per call so that a
    reloaded config applies."""

    archive: Archive | None

    def fetch(
        self, message: Message, index: int, max_bytes: int, *, download: bool = False
    ) -> Served:
        from connectors.email.extract import extract

        if not 0 <= index < len(message.attachments):
            raise NotFound(f"no attachment {attachment_id(message.id, index)}")
        att = message.attachments[index]
        reason = unavailable_reason(message, att, reachable=True)
        if reason is not None:
            raise AttachmentUnavailable(f"attachment not available: {reason}")
        _check_size(att.size, max_bytes)
        if message.channel == Channel.WEB:
            return self._uploaded(att, max_bytes, download)
        raw = self.archive.get(message.raw_ref or "") if self.archive is not None else None
        if raw is None:
            raise AttachmentUnavailable(
                "attachment not available: the original message is no longer kept"
            )
        found = extract(raw, att.sha256, index)
        if found is None:
            raise AttachmentUnavailable(
                "attachment not available: it is not in the archived message"
            )
        return served(att, found.data, found.charset, max_bytes, download=download)

    def _uploaded(self, att: Attachment, max_bytes: int, download: bool) -> Served:
        """A web form's uploaded file, from the archive by its sha256 (checked again)."""
        data = self.archive.get(att.sha256) if self.archive is not None else None
        if data is None or hashlib.sha256(data).hexdigest() != att.sha256:
            raise AttachmentUnavailable(
                "attachment not available: the uploaded file is no longer kept"
            )
        return served(att, data, None, max_bytes, download=download)


def uploaded_kept(archive: Archive | None, message: Message) -> bool:
    """A file this web-form message's post carried is still in the archive (one stat)."""
    if archive is None:
        return False
    for att in message.attachments:
        if att.kind == UPLOADED and att.sha256:
            try:
                if archive.path(att.sha256).is_file():
                    return True
            except ValueError:  # not a sha256
                continue
    return False


def served(
    att: Attachment, data: bytes, charset: str | None, max_bytes: int, *, download: bool = False
) -> Served:
    """The bytes with the type, name and headers they may be served with."""
    _check_size(len(data), max_bytes)
    inline_type = None if download else serve_as(att.content_type, data)
    name = safe_filename(att.filename, inline_type or "")
    if inline_type is None:
        ctype = "application/octet-stream"
    elif inline_type == "text/plain":
        ctype = f"text/plain; charset={charset or 'utf-8'}"
    else:
        ctype = inline_type
    headers = {
        "Content-Type": ctype,
        "Content-Disposition": content_disposition(name, inline_type is not None),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": INLINE_POLICY if inline_type else DOWNLOAD_POLICY,
        "X-Frame-Options": "SAMEORIGIN" if inline_type else "DENY",
        "Cache-Control": "private, no-store",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    return Served(data, ctype, inline_type is not None, name, headers)


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise AttachmentTooLarge(
            f"the attachment is {size} bytes, over the {max_bytes} bytes this server sends "
            "(service.attachments.max_serve_bytes)"
        )
