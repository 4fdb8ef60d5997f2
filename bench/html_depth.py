"""HTML-to-text against nesting depth: CPU seconds of `html_to_text` on n nested <div>s,
and of Lexbor alone (what html_to_text did before the depth cap) up to `--lexbor-max`.
Then amplification: 500 formatting tags left open inside a <div>, then n paragraphs; the
tree builder re-opens all 500 in every paragraph, so Lexbor alone builds 500 x n elements
(run up to `--amplified-max` paragraphs: 8,000, 69 KB, took 1.5 GB). The last line printed is one
JSON object with the figures.

Run: python bench/html_depth.py [--lexbor-max 30000] [--amplified-max 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from selectolax.lexbor import LexborHTMLParser

from connectors.email.htmltext import canonical, html_to_text


def cpu_seconds(work: object, arg: str) -> float:
    start = time.process_time()
    work(arg)  # type: ignore[operator]
    return round(time.process_time() - start, 4)


def element_count(html: str) -> int:
    """Elements in Lexbor's tree of `html`: what its memory grows with."""
    todo, count = [LexborHTMLParser(html).root], 0
    while todo:
        node = todo.pop()
        count += 1
        child = node.child if node is not None else None
        while child is not None:
            todo.append(child)
            child = child.next
    return count


def amplified(paragraphs: int) -> str:
    """The reviewer's input: 500 distinct <b>s left open, re-opened in each <p>."""
    return "<div>" + "".join(f"<b id={i}>" for i in range(500)) + "</div>" + "<p>x</p>" * paragraphs


def amplification(amplified_max: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for paragraphs in (100, 200, 1_000, 4_000, 30_000):
        html = amplified(paragraphs)
        row: dict[str, float] = {
            "bytes": len(html),
            "html_to_text_s": cpu_seconds(html_to_text, html),
            "html_to_text_elements": element_count(canonical(html)),
        }
        if paragraphs <= amplified_max:
            row["lexbor_alone_s"] = cpu_seconds(LexborHTMLParser, html)
            row["lexbor_alone_elements"] = element_count(html)
        figures[str(paragraphs)] = row
        print("amplified", paragraphs, row, flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lexbor-max", type=int, default=30_000)
    parser.add_argument("--amplified-max", type=int, default=200)
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}
    for levels in (1_000, 3_000, 10_000, 30_000, 100_000, 150_000):
        html = "<div>" * levels + "deep text" + "</div>" * levels
        row = {"bytes": len(html), "html_to_text_s": cpu_seconds(html_to_text, html)}
        if levels <= args.lexbor_max:
            row["lexbor_alone_s"] = cpu_seconds(LexborHTMLParser, html)
        figures[str(levels)] = row
        print(levels, row, flush=True)
    by_paragraphs = amplification(args.amplified_max)
    print(json.dumps({"cpu_s_by_depth": figures, "amplified_by_paragraphs": by_paragraphs}))


if __name__ == "__main__":
    main()
