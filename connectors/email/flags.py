"""Header facts the router acts on: machine mail, bulk, forwards. Reported, not decided.

`machine_mail` is the one place that decides whether a person wrote a mail; the signals
it reads are listed in docs/channels/email.md ("Machine mail").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from connectors.email.charsets import decode_header
from omnidesk.model import Flag

# Not X-Auto-Response-Suppress: Outlook/Exchange put it on mail people write too.
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
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


_REPORT_FLAGS = {
    "delivery-status": Flag.BOUNCE,
    "feedback-report": Flag.FEEDBACK_REPORT,
    "disposition-notification": Flag.READ_RECEIPT,
}


def machine_mail(
    heads: Mapping[str, str], subject: str, sender: str, report: str | None
) -> list[tuple[Flag, str]]:
    """Each sign that a machine sent this mail, as (flag, evidence): the report type of a
    multipart/report (DSN, ARF, MDN), a mailer daemon's bounce, and the auto-reply headers
    (Auto-Submitted, RFC 3834; X-Autoreply and kin; a null Return-Path). Empty for a
    person's mail. `Precedence: bulk/list/junk` is not a sign: see `is_bulk`."""
    found: list[tuple[Flag, str]] = []
    if report in _REPORT_FLAGS:
        found.append((_REPORT_FLAGS[report], f"report: {report}"))
    elif sender.startswith(_BOUNCE_SENDERS) and _BOUNCE_SUBJECT.search(subject):
        found.append((Flag.BOUNCE, f"sender: {sender[:60]}"))  # a bounce without a DSN part
    evidence = _auto_reply_evidence(heads, subject)
    if evidence:
        found.append((Flag.AUTO_REPLY, evidence))
    return found


def _auto_reply_evidence(heads: Mapping[str, str], subject: str) -> str:
    """Why this looks like an auto-reply (e.g. ``auto-submitted: auto-replied``), or ''."""
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
