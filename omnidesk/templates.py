"""Canned replies: `{customer_name}`-style placeholders filled from a fixed set of names.

`str.format` would let a template reach attributes (`{ticket.__class__}`) or items, so
templates are parsed here and only bare known names are substituted; `{{` and `}}` are
literal braces. Nothing in a template is ever evaluated.
"""

from __future__ import annotations

from string import Formatter

PLACEHOLDERS = frozenset({"customer_name", "ticket_id", "agent_name", "queue"})


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


def render(text: str, values: dict[str, str]) -> str:
    """Fill the placeholders; a missing value becomes an empty string."""
    return "".join(
        literal + (str(values.get(name, "")) if name else "") for literal, name in _parse(text)
    )
