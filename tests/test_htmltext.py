"""HTML-to-text stays linear in nesting depth: a linear pre-scan measures the depth, and a
body past the cap is flattened before Lexbor (whose tree builder is quadratic in depth)
sees it. Nor can the tree builder multiply elements: it re-opens every formatting element
left open at each later token, so the formatting tags it does not need never reach it.
No timings: the tests check the structure (tree depth, element count) that bounds the work."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser, LexborNode

from connectors.email.htmltext import (
    END,
    MAX_DEPTH,
    START,
    canonical,
    flatten,
    html_to_text,
    nesting_depth,
    tags,
)


def tree_depth(html: str) -> int:
    """The deepest element of the tree Lexbor builds (iterative: deep trees stay safe)."""
    root = LexborHTMLParser(html).root
    deepest, todo = 0, [(root, 1)] if root is not None else []
    while todo:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        child: LexborNode | None = node.child
        while child is not None:
            if child.tag and not child.tag.startswith("-"):
                todo.append((child, depth + 1))
            child = child.next
    return deepest


def element_count(html: str) -> int:
    """How many elements Lexbor's tree of `html` holds."""
    root = LexborHTMLParser(html).root
    count, todo = 0, [root] if root is not None else []
    while todo:
        node = todo.pop()
        count += 1
        child: LexborNode | None = node.child
        while child is not None:
            if child.tag and not child.tag.startswith("-"):
                todo.append(child)
            child = child.next
    return count


def bounded_elements(html: str) -> bool:
    """Lexbor builds at most a few elements per tag the scan saw (implied tbody and tr, one
    re-opened <a>), whatever the markup: its work and memory are linear in the body."""
    return element_count(canonical(html)) <= 3 * len(list(tags(html))) + 8


def deep(levels: int, tag: str = "div") -> str:
    return f"<{tag}>" * levels + "deep text" + f"</{tag}>" * levels


def test_a_body_nested_a_hundred_thousand_deep_is_flattened_and_read() -> None:
    html = deep(100_000)
    assert nesting_depth(html) == MAX_DEPTH + 1  # the scan stops once past the cap
    flat = flatten(html)
    assert tree_depth(flat) <= 4  # html > body > br/text: nothing left to nest
    assert html_to_text(html) == "deep text"


@pytest.mark.parametrize("levels", [1_000, 10_000, 100_000])
def test_the_scan_reads_each_tag_once(levels: int) -> None:
    kinds = [kind for kind, _name, _start, _end in tags(deep(levels))]
    assert kinds == [START] * levels + [END] * levels


def test_mail_shaped_html_reaches_lexbor_with_its_structure() -> None:
    row = "<tr><td><p>Dear team,<br>my <b>case</b></p></td><td><a href='https://x.sa'>x</a></td>"
    html = "<html><head><style>p{}</style></head><body>" + "<table>" + row * 500 + "</table>"
    html = "<div><div><ul><li>one<li>two</ul>" + html + "</div></div>"
    assert nesting_depth(html) < 12
    assert html_to_text(html).startswith("one\ntwo\nDear team,\nmy case\nx (https://x.sa)\nDear")


@pytest.mark.parametrize(
    "unit",
    [
        "<div>",
        "<span><div></span>",  # an end tag that cannot close through a block
        '<div><br title="></div>">',  # a ">" and an end tag inside a quoted attribute
        "<div><!--</div>-->",  # an end tag inside a comment
        "<div><!-- x --!></div><div>",
        "<b><p></b>",  # misnested formatting
        "<table><tr><td>",  # implied tbody/tr
        "<p><table>",  # quirks mode: a table does not close the p
        "<li><ul>",
        "<div><script>'</div>'</script>",
        "<div><script><!--<script></script></div></script>",  # script escape states
        "<div><script><!--></script></div>",
        "<b><table><td></b>",
        "<svg><image>",  # foreign content: an <image> nests there
        "<div><title></div></title>",
        "<a href=x><div>",
        "<font><center></font>",
    ],
)
def test_the_scan_never_counts_shallower_than_lexbor_builds(unit: str) -> None:
    """Lexbor's tree is at most twice the scanned depth (plus html/head/body): implied
    tbody and tr are the only elements it adds that have no start tag of their own."""
    html = unit * 60
    assert tree_depth(canonical(html)) <= 2 * nesting_depth(html) + 4


_MARKUP = (
    "<div>|</div>|<span>|</span>|<p>|</p>|<b>|</b>|<b id=2>|<a href=x>|</a>|<table>|</table>"
    "|<tr>|<td>|</td>|<li>|<ul>|</ul>|<script>|</script>|<!--|-->|<style>|</style>|<svg>"
    "|</svg>|<math>|<mi>|<title>|</title>|<textarea>|</textarea>|<select>|</select>|<option>"
    "|<template>|</template>|<br>|<br/title='>|'>|<x/a=\">|\"|<form>|</form>|<!x>|<?|<![CDATA["
    "|]]>|<font>|</font>|<center>|<nobr>|</nobr>|<h1>|<dd>|<dl>|<button>|<object>|<frameset>"
    "|<body>|<html>|<head>|</body>|<noscript>|</noscript>|<iframe>|<plaintext>|<p/>|<div/>"
    "|</br>|<image>|<caption>|<col>|<colgroup>|<tbody>|<foreignObject>|<desc>|<xmp>|<pre>"
    "|<marquee>|<applet>|<i>|<u>|<em>|<frame>|<input>|<wbr>|<annotation-xml>|<mo>|x"
)
FRAGMENTS = _MARKUP.split("|")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=20))
def test_the_scan_never_counts_shallower_on_any_markup(unit: list[str]) -> None:
    html = "".join(unit) * 30
    assert tree_depth(canonical(html)) <= 2 * nesting_depth(html) + 4


def test_flattening_keeps_text_links_and_line_breaks() -> None:
    html = (
        "<head><title>skip</title></head><div><p>Line one<br>Line two</p>"
        "<script>alert(1)</script><table><tr><td>a<td>b</table>"
        '<a title="x>y" href="https://example.com/case/9">my case</a>'
        "<!-- hidden --></div>"
    )
    text = "Line one\nLine two\n\na b\nmy case (https://example.com/case/9)"
    assert html_to_text(flatten(html)) == text


@pytest.mark.parametrize(
    "cut", ["<!-- never closed <div>", "<div title='never closed", "<script>x"]
)
def test_an_unclosed_construct_ends_the_scan(cut: str) -> None:
    html = "<p>" + cut + "<div>" * 1_000
    assert [name for _kind, name, _s, _e in tags(html)][:1] == ["p"]
    assert nesting_depth(html) <= 2


def test_flattening_a_head_left_open_keeps_the_body() -> None:
    assert html_to_text(flatten("<head><title>t</title><body><div>a</div>b")) == "a\nb"


FORMATTING = [
    "a",
    "b",
    "big",
    "code",
    "em",
    "font",
    "i",
    "nobr",
    "s",
    "small",
    "strike",
    "strong",
    "tt",
    "u",
]


def left_open(count: int) -> str:
    """`count` formatting start tags, all different (HTML5 re-opens at most 3 identical)."""
    return "".join(f"<{FORMATTING[i % 14]} id={i}>" for i in range(count))


@pytest.mark.parametrize(
    "html",
    [
        "<div>" + left_open(500) + "</div>" + "<p>x</p>" * 200,  # the reviewer's 69 KB: 1.5 GB
        "<div>" + "".join(f"<b id={i}>" for i in range(500)) + "</div>" + "<p>x</p>" * 200,
        "<table>" + left_open(500) + "x<td>x</td>" * 200 + "</table>",  # foster parenting
        left_open(200) + "<div>x" * 200 + "".join(f"</{t}>" for t in FORMATTING * 20),
        "".join(f"<b id={i}><p>x" for i in range(200)) + "</b>x" * 300,  # adoption agency
        "".join(f"<a href={i}><object>x" for i in range(200)) + "<p>x</p>" * 300,
        "".join(f"<a href={i}><div>x" for i in range(200)) + "</a><p>x</p>" * 300,
        "<td>" + left_open(300) + "</td><p>x</p>" * 200,
    ],
    ids=["mixed", "bold", "table", "misnested", "adoption", "markers", "links", "cell"],
)
def test_formatting_left_open_is_not_reopened_at_every_later_tag(html: str) -> None:
    assert nesting_depth(html) <= MAX_DEPTH  # so Lexbor gets it, not the flattener
    assert bounded_elements(html)
    assert html_to_text(html).count("x") == html.count("x")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=20))
def test_lexbor_builds_a_bounded_tree_from_any_markup(unit: list[str]) -> None:
    html = "".join(unit) * 30
    if nesting_depth(html) <= MAX_DEPTH:  # deeper is flattened and Lexbor never sees it
        assert bounded_elements(html)


def test_formatting_tags_are_left_out_but_their_text_and_links_kept() -> None:
    html = "<p>my <b>urgent</b> <font color=red><i>case</i></font> <a href='https://x.sa'>x</a>"
    assert canonical(html) == "<p>my urgent case <a href='https://x.sa'>x</a>"
    assert html_to_text(html) == "my urgent case x (https://x.sa)"
