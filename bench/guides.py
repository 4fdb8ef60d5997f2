"""Benchmark: the guide suggestions a ticket gets (omnidesk.guides), on a labelled set of
Arabic and English questions, beside a plain keyword baseline.

Each question of bench/guides_questions.json (written for this bench, not drawn from the
guides' text: dialect, plurals, spelling variants, as customers write) is labelled with the
topic of the guide that answers it. A suggestion is right when one of the three guides
suggested, in the question's language (as a ticket's are), is of that topic. The baseline
ranks the same guides by how many of the question's words (lower-cased, split on
punctuation: no folding, no stemming) each contains.

    python bench/guides.py [--guides guides/] [--questions bench/guides_questions.json]

Prints the figures per language and one JSON line:
{"top3_accuracy", "baseline_top3_accuracy", "top1_accuracy", "baseline_top1_accuracy",
 "questions", "guides", "ms_per_question"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omnidesk.guides.index import GuideIndex, keyword_baseline  # noqa: E402
from omnidesk.guides.loader import load_folder  # noqa: E402
from omnidesk.text import detect_language  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guides", type=Path, default=ROOT / "guides")
    parser.add_argument("--questions", type=Path, default=ROOT / "bench" / "guides_questions.json")
    args = parser.parse_args(argv)
    guides, problems = load_folder(args.guides)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    rows = json.loads(args.questions.read_text("utf-8"))
    topics = {g.topic for g in guides}
    unknown = sorted({r["topic"] for r in rows} - topics)
    if unknown:
        print(f"questions labelled with no guide's topic: {unknown}", file=sys.stderr)
        return 2
    index = GuideIndex(guides)
    tally: dict[str, list[int]] = {}  # lang -> [n, top3, top1, base3, base1]
    started = time.perf_counter()
    for row in rows:
        lang = detect_language(row["question"]).value
        lang = lang if lang in ("ar", "en") else None
        ours = [h.guide.topic for h in index.search(row["question"], limit=3, lang=lang)]
        base = [g.topic for g in keyword_baseline(guides, row["question"], limit=3, lang=lang)]
        want = row["topic"]
        counts = tally.setdefault(lang or "mixed", [0, 0, 0, 0, 0])
        counts[0] += 1
        counts[1] += want in ours
        counts[2] += ours[:1] == [want]
        counts[3] += want in base
        counts[4] += base[:1] == [want]
    elapsed = time.perf_counter() - started
    total = [sum(c[i] for c in tally.values()) for i in range(5)]
    print(f"{len(guides)} guides, {total[0]} questions")
    print(f"{'':8} {'n':>4} {'top-3':>7} {'baseline':>9} {'top-1':>7} {'baseline':>9}")
    for name, c in [*sorted(tally.items()), ("all", total)]:
        print(
            f"{name:8} {c[0]:>4} {c[1] / c[0]:>7.1%} {c[3] / c[0]:>9.1%}"
            f" {c[2] / c[0]:>7.1%} {c[4] / c[0]:>9.1%}"
        )
    figures = {
        "top3_accuracy": round(total[1] / total[0], 4),
        "baseline_top3_accuracy": round(total[3] / total[0], 4),
        "top1_accuracy": round(total[2] / total[0], 4),
        "baseline_top1_accuracy": round(total[4] / total[0], 4),
        "questions": total[0],
        "guides": len(guides),
        "ms_per_question": round(elapsed * 1000 / total[0], 3),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
