"""A web-form POST body as the fields and files it carries, whatever the browser sent: JSON,
``application/x-www-form-urlencoded`` or ``multipart/form-data``. Pure: bytes in, values out;
the normalizer (connectors/web/normalize.py) then checks the fields as it checks JSON.

A plain HTML form cannot send JSON, so a ministry page posting with no script at all sends
one of the other two; the submission is turned into the same JSON shape either way.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import hashlib
import urllib.parse
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from connectors.base_normalize import MAX_JSON_BYTES, load_json
from omnidesk.errors import PayloadError

MAX_FIELDS = 100  # form fields in one body; a real form has a dozen
# Read as JSON: what the form's first API clients sent (often no type, or a generic one).
_JSON_TYPES = frozenset(
    {"", "application/json", "text/json", "text/plain", "application/octet-stream"}
)


class UnsupportedMedia(PayloadError):
    """A body type the form does not take (HTTP 415)."""


@dataclass
class UploadedFile:
    filename: str
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def described(self) -> dict[str, Any]:
        """The attachment as the JSON form lists it (connectors/web/normalize.py)."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": len(self.data),
            "sha256": self.sha256,
        }


@dataclass
class Submission:
    fields: dict[str, Any]
    files: list[UploadedFile] = field(default_factory=list)
    kind: str = "json"  # json, urlencoded, multipart


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode(content_type: str | None, body: bytes, *, max_bytes: int = MAX_JSON_BYTES) -> Submission:
    """The fields (and files) of one body; PayloadError (reason not_json / not_form) when it
    cannot be read, UnsupportedMedia for a type the form does not take."""
    kind = media_type(content_type)
    if kind in _JSON_TYPES or kind.endswith("+json"):
        form = load_json(body, max_bytes=max_bytes)
        if not isinstance(form, dict):
            raise PayloadError("web form: not a JSON object", reason="not_json")
        return Submission(fields=form)
    if kind == "application/x-www-form-urlencoded":
        return Submission(fields=_urlencoded(body), kind="urlencoded")
    if kind == "multipart/form-data":
        return _multipart(content_type or "", body)
    raise UnsupportedMedia(f"web form: {kind!r} is not taken", reason="unsupported_media_type")


def _urlencoded(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
        pairs = urllib.parse.parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS,
            errors="strict",
        )  # fmt: skip
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"web form: not a readable form ({exc})", reason="not_form") from None
    fields: dict[str, Any] = {}
    for name, value in pairs:
        fields.setdefault(name, value)  # a repeated field: the first one counts
    return fields


def _multipart(content_type: str, body: bytes) -> Submission:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or not message.get_boundary():
        raise PayloadError("web form: not a readable multipart body", reason="not_form")
    fields: dict[str, Any] = {}
    files: list[UploadedFile] = []
    parts = message.get_payload()
    if not isinstance(parts, list) or len(parts) > MAX_FIELDS:
        raise PayloadError("web form: not a readable multipart body", reason="not_form")
    for part in parts:
        if not isinstance(part, Message):
            raise PayloadError("web form: not a readable multipart body", reason="not_form")
        name = _text(part.get_param("name", header="content-disposition"))
        if not name:
            continue
        filename = part.get_param("filename", header="content-disposition")
        payload = part.get_payload(decode=True)  # None for a nested multipart
        data = payload if isinstance(payload, bytes) else b""
        if filename is not None:
            if not _text(filename) and not data:
                continue  # a file input left empty: browsers still send the part
            files.append(
                UploadedFile(
                    filename=_text(filename).replace("\\", "/").rsplit("/", 1)[-1][:255]
                    or "attachment",
                    content_type=part.get_content_type(),
                    data=data,
                )
            )
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            fields.setdefault(name, data.decode(charset))
        except (LookupError, UnicodeDecodeError):
            raise PayloadError(
                f"web form: field {name!r} is not readable text", reason="not_form"
            ) from None
    return Submission(fields=fields, files=files, kind="multipart")


def _text(value: Any) -> str:
    """A header parameter as text: browsers send UTF-8 file names raw, which the parser keeps
    as surrogate escapes; RFC 2231 values come as (charset, lang, value)."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    text = str(value)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8").strip()
    except UnicodeDecodeError:
        return text.encode("utf-8", "replace").decode("utf-8").strip()
