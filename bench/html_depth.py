"""HTML-to-text against nesting depth: CPU seconds of `html_to_text` on n nested <div>s,
and of Lexbor alone (what html_to_text did before the depth cap) up to `--lexbor-max`.
The last line printed is one JSON object with the figures.

Run: python bench/html_depth.py [--lexbor-max 30000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from selectolax.lexbor import LexborHTMLParser

from connectors.email.htmltext import html_to_text


def cpu_seconds(work: object, arg: str) -> float:
    start = time.process_time()
    work(arg)  # type: ignore[operator]
    return round(time.process_time() - start, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lexbor-max", type=int, default=30_000)
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}
    for levels in (1_000, 3_000, 10_000, 30_000, 100_000, 150_000):
        html = "<div>" * levels + "deep text" + "</div>" * levels
        row = {"bytes": len(html), "html_to_text_s": cpu_seconds(html_to_text, html)}
        if levels <= args.lexbor_max:
            row["lexbor_alone_s"] = cpu_seconds(LexborHTMLParser, html)
        figures[str(levels)] = row
        print(levels, row, flush=True)
    print(json.dumps({"cpu_s_by_depth": figures}))


if __name__ == "__main__":
    main()
