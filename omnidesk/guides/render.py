"""A guide's Markdown as HTML for the public pages, and as plain text for excerpts.

markdown-it-py in its CommonMark preset with `html` off: raw HTML in a guide is shown as
text, never passed through, and link targets such as ``javascript:`` are refused by its
link validator. The department writes the guides, but a page customers read should not
depend on every editor's care.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_MARKUP = re.compile(r"(^|\n)\s{0,3}(#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s?)")
_EMPHASIS = re.compile(r"[*_`]{1,3}")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def to_html(markdown: str) -> str:
    """Safe HTML for a guide's body (raw HTML in the source comes out escaped)."""
    return _MARKDOWN.render(markdown)


def plain(markdown: str) -> str:
    """The text of a guide without its Markdown marks, whitespace collapsed."""
    text = _LINK.sub(r"\1", markdown)
    text = _MARKUP.sub(r"\1", text)
    return " ".join(_EMPHASIS.sub("", text).split())


def excerpt(markdown: str, limit: int = 300) -> str:
    """The opening of a guide as plain text, cut at a word near `limit` characters."""
    text = plain(markdown)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + "…"
