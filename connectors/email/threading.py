"""The ticket reference carried in email subjects, e.g. ``[#OD-2026-000123]``.

Outgoing replies put it in the subject; an incoming subject that carries it joins that
ticket even when the customer's client dropped In-Reply-To and References.
"""

from __future__ import annotations

import re

_TICKET_REF = re.compile(r"\[\s*#\s*(OD-\d{4}-\d{1,12})\s*\]", re.IGNORECASE)


def format_ticket_ref(ticket_id: str) -> str:
    """The subject tag for a ticket id such as ``OD-2026-000123``."""
    return f"[#{ticket_id}]"


def find_ticket_ref(subject: str) -> str | None:
    """The ticket id referenced in a subject, upper-cased, or None."""
    match = _TICKET_REF.search(subject or "")
    return match.group(1).upper() if match else None


def tag_subject(subject: str, ticket_id: str) -> str:
    """An outgoing subject carrying the ticket reference exactly once."""
    if find_ticket_ref(subject) == ticket_id.upper():
        return subject
    return f"{subject} {format_ticket_ref(ticket_id)}".strip()
