"""HTML mail bodies to readable text: paragraphs kept, links as "text (url)", no scripts.

Lexbor builds the tree, but an HTML5 tree builder walks its stack of open elements on most
tags, so its cost grows with depth times tags: 150,000 nested <div>s took minutes of CPU in
C code nothing can interrupt. So a linear scan (`tags`, O(1) work per tag) reads the markup
first, and `nesting_depth` counts how deep it nests, erring deep. A body deeper than
`MAX_DEPTH` is flattened (blocks become line breaks, other tags are dropped); any other
reaches Lexbor as `canonical`: the same tags and text, without the comments, CDATA and
raw-text content that could make Lexbor's tokenizer see tags the scan did not, and without
the formatting tags but <a> (<b>, <font>, ...), which the tree builder would re-open at every
later token: 500 left open made 69 KB of HTML cost 1.5 GB. Lexbor's tree is then at most
about twice the scanned depth and a few elements per tag (tests/test_htmltext.py checks
both on adversarial markup), so its memory is linear in the size of the body, and its work
too, each tag walking a stack of at most about 2 x MAX_DEPTH elements.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from selectolax.lexbor import LexborHTMLParser

MAX_DEPTH = 512  # the depth at which Chromium's parser stops nesting, too

_BLOCKS = "p,div,br,li,tr,h1,h2,h3,h4,h5,h6,blockquote,pre,table,hr,dt,dd,address"
_CELLS = "td,th"
_BLANK_RUNS = re.compile(r"\n[ \t\u00a0]*(?:\n[ \t\u00a0]*)+")
_SPACES = re.compile(r"[ \t\u00a0\u200b]+")

START, END, SKIPPED = "start", "end", "skipped"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Void: never pushed. Inside <svg> or <math> only those that break out to HTML stay void;
# there an <image> or <input> is a foreign element that nests.
_VOID_ANYWHERE = _names("br embed hr img meta")
_VOID = _VOID_ANYWHERE | _names(
    "area base basefont bgsound col frame image input keygen link param source track wbr"
)
_FOREIGN = _names("svg math")
# HTML5 formatting elements but <a>: styling only, nothing html_to_text reads. The tree
# builder re-opens every one left open ("reconstruct the active formatting elements") at
# each later text or tag, so 500 unclosed <b id=N> cost 500 new elements per <p>.
_STYLE_ONLY = _names("b big code em font i nobr s small strike strong tt u")
# Raw text: the tokenizer reads up to the matching end tag and sees no tags inside.
_RAW = _names("script style xmp iframe noembed noframes textarea title")
_RAW_END = {name: re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE) for name in _RAW}
_SCRIPT_MARKS = re.compile(r"<!--(-*>)?|-->|<(/?)script[\t\n\f\r />]", re.IGNORECASE)
# A start tag closes these when they are the current node (HTML5 "in body"/table rules).
_CLOSES_P = _names(
    "address article aside blockquote center details dialog dir div dl fieldset"
    " figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup main menu nav ol p"
    " pre section summary ul"
)
_IMPLIED_END: dict[str, frozenset[str]] = {
    **dict.fromkeys(_CLOSES_P, frozenset({"p"})),
    "li": frozenset({"li", "p"}),
    "dt": frozenset({"dt", "dd", "p"}),
    "dd": frozenset({"dt", "dd", "p"}),
    "option": frozenset({"option"}),
    "optgroup": frozenset({"option", "optgroup"}),
    "td": frozenset({"td", "th"}),
    "th": frozenset({"td", "th"}),
    "tr": frozenset({"td", "th", "tr"}),
}
_FLAT_BREAKS = frozenset(_BLOCKS.split(",")) | {"ul", "ol", "dl", "section", "article"}
_FLAT_SKIPPED = frozenset({"head", "noscript", "template"})
_TAG_OPEN = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]*)")
# HTML5 attributes: quotes only count after "=", so a ">" inside a quoted value is not the end.
_ATTRS = re.compile(
    r"""(?:[\t\n\f\r /]*[^\t\n\f\r />][^\t\n\f\r />=]*[\t\n\f\r ]*"""
    r"""(?:=[\t\n\f\r ]*(?:"[^"]*"?|'[^']*'?|[^\t\n\f\r >]*))?)*[\t\n\f\r /]*"""
)
_HREF = re.compile(r"""[\s"'/]href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body. Never raises on bad markup; the parser repairs it."""
    deep = nesting_depth(html, limit=MAX_DEPTH) > MAX_DEPTH
    html = flatten(html) if deep else canonical(html)
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


def tags(html: str) -> Iterator[tuple[str, str, int, int]]:
    """(kind, lower-case name, start, end) of every tag, and of every stretch that is neither
    tag nor text (SKIPPED: comments, doctypes, raw-text content), in document order.

    Linear: each step moves past what it read, and a search that finds nothing ends the scan
    with a SKIPPED stretch to the end (an unclosed comment, tag or script, as in HTML5)."""
    size, pos = len(html), 0
    while (pos := html.find("<", pos)) >= 0:
        opened = _TAG_OPEN.match(html, pos)
        if opened is None:
            end = _markup_end(html, pos)
            if end != pos + 1:  # not a "<" of the text
                yield SKIPPED, "", pos, end if end >= 0 else size
            if end < 0:
                return
            pos = end
            continue
        attrs = _ATTRS.match(html, opened.end())
        assert attrs is not None  # every part of _ATTRS is optional: it matches "" at least
        close = attrs.end()
        if close >= size:  # a tag cut off by the end of the document is dropped
            yield SKIPPED, "", pos, size
            return
        name = opened.group(2).lower()
        kind = END if opened.group(1) else START
        yield kind, name, pos, close + 1
        pos = close + 1
        if kind == START and (name in _RAW or name == "plaintext"):
            end = _raw_end(html, name, pos)
            yield SKIPPED, name, pos, end if end >= 0 else size
            if end < 0:
                return
            pos = end


def _raw_end(html: str, name: str, pos: int) -> int:
    """Where the end tag of a raw-text element starting at `pos` is (-1: none)."""
    if name == "script":
        return _script_end(html, pos)
    found = _RAW_END[name].search(html, pos) if name != "plaintext" else None
    return found.start() if found else -1


def _script_end(html: str, pos: int) -> int:
    """Where the </script> ending a script that starts at `pos` is (-1: none). HTML5 script
    data has escape states: after "<!--", a "<script" makes the next "</script>" close
    that inner one instead, until a "-->"."""
    state = "data"
    for found in _SCRIPT_MARKS.finditer(html, pos):
        if found.group(1) is not None:  # "<!-->": straight back to script data
            state = "data"
        elif found.group(0).startswith("<!"):
            state = "escaped" if state == "data" else state
        elif found.group(0) == "-->":
            state = "data"
        elif found.group(2):  # "</script"
            if state != "double":
                return found.start()
            state = "escaped"
        elif state == "escaped":  # "<script"
            state = "double"
    return -1


def _markup_end(html: str, pos: int) -> int:
    """Where a comment, doctype or processing instruction starting at `pos` ends (-1: at the
    end of the document); `pos + 1` when the "<" is only text."""
    if html.startswith("<!--", pos):
        start = pos + 4
        if html.startswith(">", start):
            return start + 1
        if html.startswith("->", start):
            return start + 2
        dashes = html.find("-->", start)
        bang = html.find("--!>", start, dashes if dashes >= 0 else len(html))
        if bang >= 0:
            return bang + 4
        return dashes + 3 if dashes >= 0 else -1
    if html.startswith(("<!", "<?", "</"), pos):
        close = html.find(">", pos + 2)
        return close + 1 if close >= 0 else -1
    return pos + 1


def canonical(html: str) -> str:
    """`html` with only the tags and text `tags` saw: comments, processing instructions,
    CDATA and raw-text content (scripts, styles, titles) left out; none of them is text
    of the body. So Lexbor's tokenizer meets only tags `nesting_depth` counted, whatever
    state its tree builder puts it in (in <svg>, a <style> is not raw text).

    Formatting tags but <a> (`_STYLE_ONLY`) are left out too, which leaves the tree
    builder's list of active formatting elements only <a>s, and a new <a> closes the last
    one (HTML5 "in body"): so re-opening formatting elements, and the adoption agency
    algorithm that untangles misnested ones, create at most one element per token."""
    out: list[str] = []
    text_from = 0
    for kind, name, start, end in tags(html):
        out.append(html[text_from:start])
        text_from = end
        if name in _STYLE_ONLY and kind != SKIPPED:
            continue
        if kind != SKIPPED or html[start : start + 9].lower() == "<!doctype":
            out.append(html[start:end])  # a doctype decides quirks mode, so it stays
    out.append(html[text_from:])
    return "".join(out)


def nesting_depth(html: str, limit: int = MAX_DEPTH) -> int:
    """How deep the elements of `html` nest, read in one pass; stops once past `limit`.

    An end tag closes only the innermost open element, and only if it names it; a start tag
    closes only what HTML5 always closes (a <p> before a <div>, an <li> before the next).
    So sloppy markup may count deeper than a browser builds it, never shallower."""
    stack: list[str] = []
    deepest = foreign = 0  # foreign: how many <svg>/<math> are open
    for kind, name, _start, _end in tags(html):
        if kind == START and name not in (_VOID_ANYWHERE if foreign else _VOID):
            closes = _IMPLIED_END.get(name)
            while closes and stack and stack[-1] in closes:
                stack.pop()
            stack.append(name)
            foreign += name in _FOREIGN
            if len(stack) > deepest:
                deepest = len(stack)
                if deepest > limit:
                    break
        elif kind == END and stack and stack[-1] == name:
            foreign -= stack.pop() in _FOREIGN
    return deepest


def flatten(html: str) -> str:
    """`html` with no nesting left: text kept, block tags turned into <br>, cells into a
    space, links kept with their href, everything else (and head, scripts) dropped."""
    out: list[str] = []
    text_from, skipping = 0, ""
    for kind, name, start, end in tags(html):
        if not skipping:
            out.append(html[text_from:start])
        text_from = end
        if skipping:  # a head left open ends where the body starts
            ended = (kind == END and name == skipping) or (name == "body" and skipping == "head")
            skipping = "" if ended else skipping
        elif kind == SKIPPED:
            continue
        elif kind == START and name in _FLAT_SKIPPED:
            skipping = name
        elif name in _FLAT_BREAKS:
            out.append("<br>")
        elif name in ("td", "th"):
            out.append(" ")
        elif name == "a":
            out.append(_flat_link(html[start:end]) if kind == START else "</a>")
    if not skipping:
        out.append(html[text_from:])
    return "".join(out)


def _flat_link(tag: str) -> str:
    found = _HREF.search(tag)
    if found is None:
        return "<a>"
    href = next(g for g in found.groups() if g is not None)
    return '<a href="' + href.replace('"', "&quot;") + '">'
