"""Header facts the router acts on: auto-replies, bounces, forwards. Reported, not decided."""

from __future__ import annotations

import re
from collections.abc import Mapping

from connectors.email.charsets import decode_header

_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-response-suppress")
# Precedence says "sent to many" (bulk, junk, list): a list or a group forwarding a
# customer's own mail adds it, so alone it never makes a mail machine-sent. Only the
# non-standard auto_reply value claims that.
_AUTO_PRECEDENCE = frozenset({"auto_reply", "auto-reply"})
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[ -]?reply|autoreply|out of (?:the )?office"
    r"|رد تلقائي|الرد التلقائي|خارج المكتب)\s*:",
    re.IGNORECASE,
)
_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:(?:re|aw|رد)\s*:\s*)*(?:fwd?|tr|wg|إعادة توجيه|اعادة توجيه|توجيه|إعادة إرسال)\s*:",
    re.IGNORECASE,
)
_BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|failure notice|returned mail|delivery has failed"
    r"|لم يتم التسليم|تعذر تسليم",
    re.IGNORECASE,
)


def auto_reply_evidence(heads: Mapping[str, str], subject: str) -> str:
    """Why this looks machine-sent (e.g. ``auto-submitted: auto-replied``), or ''."""
    value = decode_header(heads.get("auto-submitted")).lower()
    if value and not value.startswith("no"):
        return f"auto-submitted: {value[:60]}"
    for name in _AUTO_HEADERS:
        if heads.get(name) is not None:
            return name
    precedence = decode_header(heads.get("precedence")).lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"precedence: {precedence}"
    return_path = heads.get("return-path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        return "return-path: <>"
    if _AUTO_SUBJECT.match(subject):
        return "subject"
    return ""


def is_bulk(heads: Mapping[str, str]) -> bool:
    """Precedence: bulk, junk or list: a fact for rules (flag ``bulk``), never a drop."""
    return decode_header(heads.get("precedence")).strip().lower() in _BULK_PRECEDENCE


def is_forward_subject(subject: str) -> bool:
    return bool(_FORWARD_SUBJECT.match(subject))


def is_bounce_sender(sender: str, subject: str) -> bool:
    """A non-DSN bounce: a mailer daemon announcing a failed delivery."""
    return sender.startswith(_BOUNCE_SENDERS) and bool(_BOUNCE_SUBJECT.search(subject))
