"""HTML mail bodies to readable text: paragraphs kept, links as "text (url)", no scripts."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

_BLOCKS = "p,div,br,li,tr,h1,h2,h3,h4,h5,h6,blockquote,pre,table,hr,dt,dd,address"
_CELLS = "td,th"
_BLANK_RUNS = re.compile(r"\n[ \t\u00a0]*(?:\n[ \t\u00a0]*)+")
_SPACES = re.compile(r"[ \t\u00a0\u200b]+")


def html_to_text(html: str) -> str:
    """Readable text of an HTML body. Never raises on bad markup; the parser repairs it."""
    tree = LexborHTMLParser(html)
    tree.strip_tags(["script", "style", "head", "noscript", "template"])
    for link in tree.css("a[href]"):
        href = (link.attrs.get("href") or "").strip()
        label = " ".join(link.text(deep=True).split())
        shown = href.removeprefix("mailto:") == label
        if href.startswith(("http:", "https:", "mailto:")) and not shown:
            link.replace_with(f"{label} ({href})" if label else href)
    for node in tree.css(_BLOCKS):
        node.insert_after("\n")
        if node.tag == "blockquote":
            node.insert_before("\n")
    for node in tree.css(_CELLS):
        node.insert_after(" ")
    root = tree.body or tree.root
    if root is None:
        return ""
    text = root.text(deep=True)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()
