"""Canned replies: `{customer_name}`-style placeholders filled from a fixed set of names.

`str.format` would let a template reach attributes (`{ticket.__class__}`) or items, so
templates are parsed here and only bare known names are substituted; `{{` and `}}` are
literal braces. Nothing in a template is ever evaluated.

`{first_response_due}` is the ticket's promised first-response time in Riyadh time
(`due_text`). A ticket whose SLA policy promises none has no value for it, and a line that
names it is then left out whole: "we will answer by ..." with nothing after it reads wrong.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from string import Formatter
from typing import TypeVar

from omnidesk.i18n import translator

PLACEHOLDERS = frozenset(
    {"customer_name", "ticket_id", "agent_name", "queue", "first_response_due"}
)
# Placeholders whose line is left out when they have no value.
LINE_PLACEHOLDERS = frozenset({"first_response_due"})
# A due date as customers read it (in Riyadh: omnidesk.i18n's default zone), with the weekday.
DUE_DATE_PATTERN = "EEEE d MMMM y"
DUE_TIME_PATTERN = "HH:mm"
_Lang = TypeVar("_Lang", bound=str)  # a template's language key


class TemplateError(ValueError):
    """A template names an unknown placeholder or uses attribute, index or format syntax."""


def _parse(text: str) -> list[tuple[str, str | None]]:
    try:
        parts = list(Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"bad template: {exc}") from None
    out: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parts:
        if name is None:
            out.append((literal, None))
            continue
        if spec or conversion or name not in PLACEHOLDERS:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            known = ", ".join(sorted(PLACEHOLDERS))
            raise TemplateError(f"unknown placeholder {{{shown}}} (known: {known})")
        out.append((literal, name))
    return out


def template_problem(text: str) -> str | None:
    """The config check: None when the template is fine, else the message."""
    try:
        _parse(text)
    except TemplateError as exc:
        return str(exc)
    return None


def render(text: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders; a missing value becomes an empty string, and a line naming a
    LINE_PLACEHOLDERS name that has no value is left out."""
    if any(not values.get(name) for name in LINE_PLACEHOLDERS):
        lines = text.splitlines(keepends=True)
        kept = "".join(line for line in lines if not _empty_line_placeholder(line, values))
        text = kept if text.endswith("\n") else kept.rstrip("\n")
    return "".join(
        literal + (str(values.get(name, "")) if name else "") for literal, name in _parse(text)
    )


def _empty_line_placeholder(line: str, values: Mapping[str, str]) -> bool:
    try:
        names = {name for _, name in _parse(line) if name}
    except TemplateError:
        return False  # a placeholder split over lines: the whole text's parse says why
    return any(name in LINE_PLACEHOLDERS and not values.get(name) for name in names)


def template_text(template: Mapping[_Lang, str], language: str) -> str:
    """The template's text in `language` (ar, en), else in the one language it has. Keyed
    by the config's ``Literal["ar", "en"]`` or by plain strings alike."""
    found = next((text for lang, text in template.items() if lang == language), None)
    return found or next(iter(template.values()), "")


def reply_language(ticket_language: str) -> str:
    """The language a reply goes out in: English for an English ticket, else Arabic (mixed
    and unknown included: the ministry's first language)."""
    return "en" if ticket_language == "en" else "ar"


def due_text(moment: datetime, language: str) -> str:
    """A due time as a customer reads it, in Riyadh time, naming the zone: "الأحد 6 ديسمبر
    2026، 10:00 بتوقيت الرياض" or "Sunday 6 December 2026, 10:00 Riyadh time"."""
    # Every receipt asks for one, and Babel takes about 28 us to format it; the text changes
    # by the minute only (HH:mm), so it is made once per minute and language.
    return _due_text(moment.replace(second=0, microsecond=0), "ar" if language == "ar" else "en")


@functools.lru_cache(maxsize=1024)
def _due_text(moment: datetime, language: str) -> str:
    tr = translator(language)
    return tr._("{date}, {time} Riyadh time").format(
        date=tr.datetime(moment, DUE_DATE_PATTERN), time=tr.datetime(moment, DUE_TIME_PATTERN)
    )
