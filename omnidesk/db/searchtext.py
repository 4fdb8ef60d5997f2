"""What the search index holds of a text: words after `omnidesk.text.fold`, the same fold
intake and the rules use, so a query matches whatever way the customer typed it."""

from __future__ import annotations

from omnidesk.text import fold


def search_document(*parts: str) -> str:
    """The text given to ``to_tsvector('simple', ...)`` for a message (subject, body)."""
    return fold(" ".join(p for p in parts if p))
