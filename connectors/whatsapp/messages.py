"""Cloud API message bodies (text, interactive buttons or list, template) and the
24-hour customer-service window. Pure: no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.whatsapp.config import Template
from omnidesk.errors import PermanentError

TEXT_LIMIT = 4096
MAX_BUTTONS = 3  # reply buttons; more choices (up to 10) go in a list
MAX_ROWS = 10
PARAMETER_LIMIT = 1024  # a template parameter is one line of at most this many characters


def inside_window(last_customer_at: str | None, hours: float, now: datetime) -> bool:
    """True when a free-text reply is allowed: the customer wrote within `hours`.
    Absent means inside (the caller did not know); unix seconds or ISO 8601 are read."""
    if not last_customer_at:
        return True
    value = last_customer_at.strip()
    try:
        if value.isdigit():
            when = datetime.fromtimestamp(int(value), UTC)
        else:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise PermanentError(f"meta.last_customer_at: not a time: {value[:40]!r}") from None
    return now - when <= timedelta(hours=hours)


def text_messages(to: str, text: str, context_id: str | None = None) -> list[dict[str, Any]]:
    """One text message per 4,096 characters; the first quotes the customer's message."""
    parts = _split(text.strip(), TEXT_LIMIT)
    if not parts:
        raise PermanentError("empty reply text")
    bodies = []
    for i, part in enumerate(parts):
        body = _base(to) | {"type": "text", "text": {"preview_url": False, "body": part}}
        if context_id and i == 0:
            body["context"] = {"message_id": context_id}
        bodies.append(body)
    return bodies


def interactive_message(to: str, text: str, buttons: str) -> dict[str, Any]:
    """Reply buttons (up to 3) or a list (up to 10) from `meta["buttons"]`: a JSON array
    of titles or of {"id", "title"}, or titles separated by "|"."""
    choices = _choices(buttons)
    body_text = text.strip()[:1024] or "…"
    if len(choices) <= MAX_BUTTONS:
        action: dict[str, Any] = {
            "buttons": [
                {"type": "reply", "reply": {"id": cid, "title": title[:20]}}
                for cid, title in choices
            ]
        }
        kind = "button"
    else:
        action = {
            "button": "اختر / Choose",
            "sections": [
                {"title": "", "rows": [{"id": cid, "title": title[:24]} for cid, title in choices]}
            ],
        }
        kind = "list"
    interactive = {"type": kind, "body": {"text": body_text}, "action": action}
    return _base(to) | {"type": "interactive", "interactive": interactive}


def template_message(
    to: str, template: Template, values: dict[str, str] | None = None
) -> dict[str, Any]:
    """The approved template, its body's parameters filled from `values` in the order the
    config names them, a parameter's `fallback` where this message has no value; WhatsApp
    refuses a template whose parameters are missing or empty, so a value with neither is
    refused here, naming it."""
    body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if template.parameters:
        values = values or {}
        filled = [
            (p.name, values.get(p.name, "").strip() or p.fallback.strip())
            for p in template.parameters
        ]
        missing = [name for name, text in filled if not text]
        if missing:
            raise PermanentError(
                f"template {template.name!r}: no value for parameter {missing[0]!r} in this "
                "message (give it a fallback in the template's parameters)"
            )
        parameters = [
            {"type": "text", "text": " ".join(text.split())[:PARAMETER_LIMIT]} for _, text in filled
        ]
        body["components"] = [{"type": "body", "parameters": parameters}]
    return _base(to) | {"type": "template", "template": body}


def _base(to: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}


def _choices(buttons: str) -> list[tuple[str, str]]:
    raw: Any
    try:
        raw = json.loads(buttons)
    except ValueError:
        raw = [part.strip() for part in buttons.split("|")]
    if not isinstance(raw, list):
        raise PermanentError("meta.buttons: expected a list of choices")
    choices: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        if isinstance(item, dict) and item.get("title"):
            choices.append((str(item.get("id") or i + 1), str(item["title"])))
        elif isinstance(item, str | int) and str(item).strip():
            choices.append((str(item).strip(), str(item).strip()))
        else:
            raise PermanentError(f"meta.buttons[{i}]: expected a title or {{id, title}}")
    if not 1 <= len(choices) <= MAX_ROWS:
        raise PermanentError(f"meta.buttons: 1 to {MAX_ROWS} choices (got {len(choices)})")
    return choices


def _split(text: str, limit: int) -> list[str]:
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit + 1)
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*parts, text] if text else parts
