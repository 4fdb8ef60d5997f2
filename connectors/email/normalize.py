"""RFC 822 bytes to an `Inbound`: pure, no I/O, never fatal on a defective message.

Parsing uses the fast compat32 parser and decodes only the headers and parts the ticket
needs; the modern `email.policy.default` API is several times slower on real mail
(see bench/normalize.py). Bad input raises `PayloadError` and nothing else.

Kept whole though over 500 lines: it is the one pure RFC 822 -> Inbound function and its
helpers, tested on raw files as a unit (the machine-mail signals are already flags.py).
"""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import HeaderDefect, MissingHeaderBodySeparatorDefect
from email.message import Message
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from connectors.email.charsets import decode_bytes, decode_header, unescape_surrogates
from connectors.email.flags import is_bulk, is_forward_subject, machine_mail
from connectors.email.htmltext import html_to_text
from connectors.email.parts import Body, collect
from connectors.email.split import split_body
from connectors.email.threading import find_ticket_ref
from omnidesk.errors import PayloadError
from omnidesk.model import (
    Author,
    Channel,
    Flag,
    Identity,
    IdentityKind,
    Inbound,
    Segment,
    Skipped,
)
from omnidesk.text import detect_language


@dataclass(frozen=True, slots=True)
class EmailLimits:
    """Per-account limits; over `max_raw_bytes` is an error, over `max_text_chars` truncates."""

    max_raw_bytes: int = 25 * 1024 * 1024
    max_text_chars: int = 100_000


_DEFAULT_LIMITS = EmailLimits()


class ParameterContinuationDefect(HeaderDefect):
    """A header mixes `name*` with numbered RFC 2231 sections (`name*0`, `name*1`)."""


class _LenientMessage(Message):
    """A Message whose header parameters never raise. Python 3.11's RFC 2231 decoder fails
    with TypeError on mixed `name*` / `name*0` sections (CPython gh-134151), even inside the
    parser (a multipart boundary). Such a parameter counts as absent and the part records a
    defect; the raw message is archived as it came."""

    def get_params(
        self, failobj: Any = None, header: str = "content-type", unquote: bool = True
    ) -> Any:
        try:
            return super().get_params(failobj, header, unquote)
        except (TypeError, ValueError, IndexError):
            self._bad_parameters(header)
            return failobj

    def get_param(
        self, param: str, failobj: Any = None, header: str = "content-type", unquote: bool = True
    ) -> Any:
        try:
            return super().get_param(param, failobj, header, unquote)
        except (TypeError, ValueError, IndexError):
            self._bad_parameters(header)
            return failobj

    def _bad_parameters(self, header: str) -> None:
        if not any(isinstance(d, ParameterContinuationDefect) for d in self.defects):
            self.defects.append(ParameterContinuationDefect(f"unreadable {header} parameters"))


class _RawHeaders(Compat32):
    """compat32, but 8-bit header bytes come back as surrogate escapes instead of U+FFFD,
    so raw UTF-8 or windows-1256 in a Subject can still be decoded right."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_POLICY = _RawHeaders(message_factory=_LenientMessage)
_KNOWN_HEADERS = frozenset(
    [
        "from",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "received",
        "mime-version",
        "content-type",
        "return-path",
        "delivered-to",
        "reply-to",
        "in-reply-to",
        "references",
        "sender",
        "x-mailer",
    ]
)
_MSGID = re.compile(r"<([^<>\s]+)>")
_ADDRESS = re.compile(r"^[^@\s<>()\",;:]+@[^@\s<>()\",;:]+\.[^@\s<>()\",;:]+$")
_NAME_ADDR = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^"<>,;()]*?))\s*<\s*([^<>\s]+)\s*>\s*$')
_BARE_ADDR = re.compile(r"^\s*()<?([^<>\s\",;()]+@[^<>\s\",;()]+)>?\s*$")
_ANY_ADDRESS = re.compile(r"[^\s<>()\",;:@]+@[^\s<>()\",;:@]+\.[^\s<>()\",;:@]+")
_QUOTED_PAIR = re.compile(r"\\(.)")
_WORDS = re.compile(r"\w")
_CR_NUMBER = re.compile(r"(?<![0-9])[47][0-9]{9}(?![0-9])")
_ARABIC_DIGIT = re.compile(r"[\u0660-\u0669\u06f0-\u06f9]")
_DIGITS = {0x0660 + i: str(i) for i in range(10)} | {0x06F0 + i: str(i) for i in range(10)}
_MAX_REFERENCES = 50
_MAX_SUBJECT_CHARS = 998  # RFC 5322's line limit; longer is junk or an attack
_LANGUAGE_SAMPLE = 4000  # the script of the first pages decides; long texts cost, not inform
_FREE_MAIL = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "hotmail.com",
        "outlook.com",
        "outlook.sa",
        "live.com",
        "msn.com",
        "yahoo.com",
        "ymail.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "mail.com",
        "yandex.com",
        "mail.ru",
        "qq.com",
        "163.com",
        "windowslive.com",
    ]
)
_FREE_MAIL_BRANDS = frozenset(["gmail", "hotmail", "outlook", "live", "yahoo", "gmx", "yandex"])


def normalize(
    raw: bytes,
    *,
    account: str = "default",
    limits: EmailLimits | None = None,
    received_at: datetime | None = None,
) -> Inbound | Skipped:
    """Normalize one RFC 822 message received at `received_at` (now when not given; the
    Date: header is only `sent_at`). Raises `PayloadError` (reason: not_bytes, empty,
    too_large, not_email, unparseable) when the bytes cannot be read as an email."""
    limits = limits or _DEFAULT_LIMITS
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise PayloadError(
            f"email payload must be bytes, got {type(raw).__name__}", reason="not_bytes"
        )
    raw = bytes(raw)
    if len(raw) > limits.max_raw_bytes:
        raise PayloadError(
            f"message is {len(raw)} bytes, over the {limits.max_raw_bytes} byte limit",
            reason="too_large",
        )
    if not raw.strip():
        raise PayloadError("message is empty", reason="empty")
    defects: list[str] = []
    msg = parse(raw, defects)
    heads: dict[str, str] = {}  # first value of each header; one pass beats many msg.get()
    for name, value in msg.raw_items():
        heads.setdefault(name.lower(), str(value))
    if _KNOWN_HEADERS.isdisjoint(heads):
        raise PayloadError("no RFC 822 headers found", reason="not_email")

    body = collect(msg, defects)
    subject = decode_header(heads.get("subject"))
    if len(subject) > _MAX_SUBJECT_CHARS:
        subject = subject[:_MAX_SUBJECT_CHARS]
        defects.append("SubjectTruncated")
    from_meta: dict[str, str] = {}
    author = _author(heads.get("from"), defects, from_meta)
    full_text, html_text = _body_text(body, defects)
    if len(full_text) > limits.max_text_chars:
        full_text = full_text[: limits.max_text_chars]
        defects.append("TextTruncated")
    html_text = html_text[: limits.max_text_chars]
    text, quoted, signature = split_body(full_text)

    message_id = _msgid(heads.get("message-id"))
    raw_sha = hashlib.sha256(raw).hexdigest()
    inbound = Inbound(
        channel=Channel.EMAIL,
        account=account,
        external_id=message_id or f"sha256:{raw_sha}",
        received_at=received_at or datetime.now(UTC),
        sent_at=_date(heads.get("date"), defects),
        author=author,
        subject=subject,
        text=text,
        html_text=html_text,
        quoted=quoted,
        signature=signature,
        language=detect_language(f"{subject}\n{text[:_LANGUAGE_SAMPLE]}"),
        thread_keys=_thread_keys(heads, subject),
        message_keys=[f"email:{message_id}"] if message_id else [],
        attachments=body.attachments,
        bounce=body.bounce,
        raw_ref=raw_sha,
    )
    if not message_id:
        defects.append("MessageIdMissing")
    _flag(inbound, heads, body)
    _segment(inbound)
    to = _ANY_ADDRESS.findall(unescape_surrogates(heads.get("to", "")).lower())
    if to:
        inbound.meta["to"] = ",".join(to[:10])
    parser_defects = [type(d).__name__ for part in body.parts for d in part.defects]
    inbound.meta.update(from_meta)
    inbound.defects = list(dict.fromkeys(parser_defects + defects))
    return inbound


def parse(raw: bytes, defects: list[str]) -> Message:
    """The parsed message, its header block repaired when a stray line cut it short; the
    one parse that normalize and attachment extraction (connectors/email/extract.py) share."""
    msg = _parse(raw)
    if _headers_cut_short(msg):  # rare: parse again, without the lines that cut them short
        repaired = _repair_header_block(raw, defects)
        if repaired != raw:
            msg = _parse(repaired)
    return msg


def _parse(raw: bytes) -> Message:
    try:
        return email.message_from_bytes(raw, policy=_POLICY)
    except (RecursionError, MemoryError) as exc:
        reason = f"message cannot be parsed: {type(exc).__name__}"
        raise PayloadError(reason, reason="unparseable") from None


def _headers_cut_short(msg: Message) -> bool:
    """The stdlib ended the headers at a line that is not `Name: value` (it records a
    defect), or took an obsolete `From  : x` for an mbox envelope line."""
    if msg.defects and any(isinstance(d, MissingHeaderBodySeparatorDefect) for d in msg.defects):
        return True
    unixfrom = msg.get_unixfrom()
    return bool(unixfrom and _OBS_FROM.match(unixfrom))


_BLANK_LINE = re.compile(rb"\n\r?\n")
_OBS_FROM = re.compile(r"From[ \t]+:")
_OBS_NAME = re.compile(rb"^([!-9;-~]+)[ \t]+:")
_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")
_MAX_STRAY_LINES = 5  # more lines without a colon is a body that starts with no blank line


def _repair_header_block(raw: bytes, defects: list[str]) -> bytes:
    """The bytes to parse: obsolete `Name : value` lines joined up, and stray lines inside
    the header block dropped (the stdlib ends the headers at either, losing From/Subject).
    A stray line counts as inside the block only when a header line the normalizer reads
    follows it before the blank line; otherwise the body starts there, as the stdlib says.
    The raw message is archived untouched."""
    blank = _BLANK_LINE.search(raw)
    end = blank.start() + 1 if blank else len(raw)
    lines = raw[:end].split(b"\n")
    kept: list[bytes] = []
    for i, line in enumerate(lines):
        fixed = _OBS_NAME.sub(rb"\1:", line)
        if fixed != line:
            defects.append("ObsoleteHeaderSyntax")
        if _HEADER_LINE.match(fixed) or line[:1] in (b" ", b"\t") or not line.strip(b"\r"):
            kept.append(fixed)
            continue
        if i == 0 and line.startswith(b"From "):  # an mbox envelope line
            kept.append(line)
            continue
        ahead = lines[i + 1 : i + 1 + _MAX_STRAY_LINES]
        if any(_known_header(x) for x in ahead):
            defects.append("StrayHeaderLine")
            continue
        kept.extend(lines[i:])  # the body starts here, without a blank line
        break
    return b"\n".join(kept) + raw[end:]


def _known_header(line: bytes) -> bool:
    found = _HEADER_LINE.match(line)
    if found is None:
        return False
    return line[: found.end() - 1].strip().decode().lower() in _KNOWN_HEADERS


def _body_text(body: Body, defects: list[str]) -> tuple[str, str]:
    """(body text, text converted from HTML); text/plain wins unless it is blank, and the
    HTML is only converted when it is the text."""
    plain = "\n".join(_decode_part(p, defects) for p in body.plain).strip()
    if plain:  # the HTML alternative says the same; converting it would only cost time
        return plain, ""
    html_text = ""
    if body.html:
        html = "\n".join(_decode_part(p, defects, sniff_meta=True) for p in body.html)
        html_text = html_to_text(html) if html.strip() else ""
    return html_text, html_text


_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_:.-]{2,40})""", re.IGNORECASE
)


def _decode_part(part: Message, defects: list[str], sniff_meta: bool = False) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = _charset(part)
    if charset is None and sniff_meta:
        found = _META_CHARSET.search(data[:4096])
        charset = found.group(1).decode("ascii") if found else None
    text, defect = decode_bytes(data, charset)
    if defect:
        defects.append(defect)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\x00", "")


_CHARSET_PARAM = re.compile(r"""(?:^|;)\s*charset\s*=\s*(?:"([^"]*)"|([^;"]*))""", re.IGNORECASE)


def _charset(part: Message) -> str | None:
    """The declared charset, as `get_content_charset()` reads it: a regex on the raw header
    unless RFC 2231 encoding or other quoted parameters are in play (a property test holds
    the two to agreeing)."""
    ctype = part.get("content-type") or ""
    if "*" in ctype or "\\" in ctype:
        return part.get_content_charset()
    found = _CHARSET_PARAM.search(ctype)
    if ctype.count('"') > (2 if found and found.group(1) is not None else 0):
        return part.get_content_charset()  # a quoted value may hide a `; charset=` of its own
    if not found:
        return None
    value = found.group(1) if found.group(1) is not None else found.group(2).strip()
    return value.lower() if value.isascii() else None


def _author(value: str | None, defects: list[str], meta: dict[str, str]) -> Author:
    """The first address of From: is the author. The usual shapes take a regex; the rest the
    stdlib parser; a From: neither reads (`Name addr@x`, addresses without a comma) still
    gives its addresses, the others kept in meta `from_others`."""
    if not value:
        defects.append("FromMissing")
        return Author()
    value = unescape_surrogates(str(value))
    author = _author_fast(value) or _author_parsed(value, meta)
    if author is not None:
        return author
    found = [a for a in map(_normal_address, _ANY_ADDRESS.findall(value)) if a]
    if found:
        defects.append("FromMalformed")
        _note_others(found, meta)
        name = _ANY_ADDRESS.sub(" ", value).replace("<>", " ").strip(" \t,;<>")
        name = _unquote(decode_header(name)) if _WORDS.search(name) else ""
        return Author(name=name[:200], identities=[Identity(IdentityKind.EMAIL, found[0])])
    defects.append("FromUnreadable")
    return Author(name=decode_header(value)[:200])


def _note_others(found: list[str], meta: dict[str, str]) -> None:
    """Addresses of From: after the author's, for agents to see (RFC 5322 allows several)."""
    others = [a for a in dict.fromkeys(found[1:11]) if a != found[0]]
    if others:
        meta["from_others"] = ",".join(others)


def _author_fast(value: str) -> Author | None:
    """`Name <addr>`, `"Name" <addr>` or a bare address, without the stdlib's slow address
    tokenizer; it must agree with `_author_parsed` (a property test holds it to that)."""
    simple = _NAME_ADDR.match(value) or _BARE_ADDR.match(value)
    if not simple:
        return None
    groups = simple.groups()
    address = _normal_address(groups[-1])
    if not address:
        return None
    if len(groups) == 3 and groups[0] is not None:  # a quoted name: undo its quoted-pairs
        name = _QUOTED_PAIR.sub(r"\1", groups[0])
    else:
        name = groups[-2] or ""
    return Author(
        name=_unquote(decode_header(name)), identities=[Identity(IdentityKind.EMAIL, address)]
    )


def _author_parsed(value: str, meta: dict[str, str] | None = None) -> Author | None:
    try:
        pairs = getaddresses([value])
    except (ValueError, IndexError, TypeError):  # the stdlib address parser has had such bugs
        pairs = []
    found = [(name, a) for name, a in ((n, _normal_address(a)) for n, a in pairs) if a]
    if not found:
        return None
    if meta is not None:
        _note_others([a for _, a in found], meta)
    name, address = found[0]
    return Author(
        name=_unquote(decode_header(name)), identities=[Identity(IdentityKind.EMAIL, address)]
    )


def _unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = name[1:-1].strip()
    return name


def _normal_address(addr: str) -> str | None:
    address = addr.strip().strip("<>").strip().lower()
    return address if _ADDRESS.match(address) else None


def _msgid(value: str | None) -> str | None:
    """A Message-ID as ``<local@host>``, lower-cased so references match whatever the case."""
    if not value:
        return None
    value = unescape_surrogates(str(value))
    found = _MSGID.search(value)
    token = found.group(1) if found else value.strip()
    if not token or len(token) > 500 or len(token.split()) != 1:
        return None
    return f"<{token.lower()}>"


def _thread_keys(heads: dict[str, str], subject: str) -> list[str]:
    keys: list[str] = []
    ticket = find_ticket_ref(subject)
    if ticket:
        keys.append(f"ticket:{ticket}")
    for name in ("in-reply-to", "references"):
        value = heads.get(name)
        if not value:
            continue
        ids = _MSGID.findall(unescape_surrogates(str(value)))
        if name == "references":
            ids = ids[::-1][:_MAX_REFERENCES]  # nearest ancestor first
        keys.extend(f"email:<{i.lower()}>" for i in ids)
    return list(dict.fromkeys(keys))


def _date(value: str | None, defects: list[str]) -> datetime | None:
    """The Date: header as an aware UTC time: what the sender claims, so only a fact."""
    if not value:
        defects.append("DateMissing")
        return None
    try:
        parsed = parsedate_to_datetime(unescape_surrogates(str(value)))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append("DateUnreadable")
        return None


def _flag(inbound: Inbound, heads: dict[str, str], body: Body) -> None:
    flags: list[Flag] = []
    sender = inbound.author.identity(IdentityKind.EMAIL) or ""
    for flag, evidence in machine_mail(heads, inbound.subject, sender, body.report):
        flags.append(flag)
        inbound.hints[flag.value] = evidence
    if is_bulk(heads):
        flags.append(Flag.BULK)
    list_id = heads.get("list-id")
    if list_id:
        flags.append(Flag.MAILING_LIST)
        inbound.hints["list_id"] = decode_header(list_id)[:200]
    if heads.get("in-reply-to"):
        flags.append(Flag.REPLY)
    if is_forward_subject(inbound.subject):
        flags.append(Flag.FORWARDED)
    inbound.flags = flags


def _segment(inbound: Inbound) -> None:
    haystack = f"{inbound.subject}\n{inbound.text}"
    if _ARABIC_DIGIT.search(haystack):
        haystack = haystack.translate(_DIGITS)
    found = _CR_NUMBER.search(haystack)
    if found:
        inbound.hints["cr_number"] = found.group(0)
    address = inbound.author.identity(IdentityKind.EMAIL)
    if inbound.has_flag(Flag.BOUNCE):  # a mail server's domain says nothing about a customer
        address = None
    domain = address.rsplit("@", 1)[1] if address else ""
    free = domain in _FREE_MAIL or domain.split(".", 1)[0] in _FREE_MAIL_BRANDS
    if domain and not free:
        inbound.hints["business_domain"] = domain
    if found or (domain and not free):
        inbound.segment_hint = Segment.BUSINESS
    elif free:
        inbound.segment_hint = Segment.CONSUMER
        inbound.hints["free_mail_domain"] = domain
