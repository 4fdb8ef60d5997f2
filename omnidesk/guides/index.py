"""Search over the guides, in memory, with the tickets' Arabic-aware words.

A department's guides are a few hundred short files, read by every process at start and on
SIGHUP: an in-memory inverted index answers in microseconds, and needs no table, migration
or writer, where PostgreSQL's full text search would (and gives no better ranking on so few
documents). The words are the tickets' own (omnidesk.db.searchtext: `fold`, then each word in
its folded form, its light stem and its consonant skeleton), so a guide is found by what
finds a ticket: شكاوى finds شكوى, الضمانات finds ضمان, "refunds" finds "refund".

Ranking is BM25 (k1 1.2, b 0.75) over those forms. A guide's title counts three times and its
tags and service twice, so a guide about a thing outranks one that mentions it. A query word
scores by its best form: the folded word in full, the stem at 0.7 of it, the skeleton at 0.4
(a skeleton is a loose match, two words may share one).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from omnidesk.db.searchtext import STOPWORDS, forms, words
from omnidesk.guides.loader import Guide
from omnidesk.text import fold

K1 = 1.2
B = 0.75
FORM_WEIGHTS = (1.0, 0.7, 0.4)  # the folded word, its stem, its skeleton
TITLE_WEIGHT = 3
TAG_WEIGHT = 2
MAX_QUERY_WORDS = 60  # a ticket's text asks with its first 60 distinct words
MAX_QUERY_CHARS = 4000
_ARABIC_WORD = re.compile(r"[\u0621-\u064A\u0671-\u06D3\u06FA-\u06FF]")


@dataclass(frozen=True)
class Hit:
    guide: Guide
    score: float


def _terms(text: str) -> list[str]:
    """Every form of every word of a text: what a guide is indexed under."""
    return [f for w in words(fold(text)) for f in forms(w)]


def weighted_forms(word: str) -> list[tuple[float, str]]:
    """A query word's forms with their weights: the word itself, its stem, its skeleton.
    `forms` drops a form equal to an earlier one, so two Arabic forms are the word and its
    stem (a part of the word: letters cut from its ends; when the skeleton is the stem) or
    the word and its skeleton (when the stem is the word). English has the word and stem."""
    found = forms(word)
    if len(found) == 3 or _ARABIC_WORD.match(word) is None:
        return list(zip(FORM_WEIGHTS, found, strict=False))
    full, stem, skeleton = FORM_WEIGHTS
    return [(full if f == word else stem if f in word else skeleton, f) for f in found]


def query_words(text: str, limit: int = MAX_QUERY_WORDS) -> list[str]:
    """A query's distinct folded words, stopwords dropped (unless that leaves none)."""
    found = list(dict.fromkeys(words(fold(text[:MAX_QUERY_CHARS]))))
    kept = [w for w in found if w not in STOPWORDS] or found
    return kept[:limit]


def document_text(guide: Guide) -> Iterable[str]:
    """The weighted parts of a guide: title thrice, tags and service twice, then the rest."""
    meta = guide.meta
    tags = " ".join([*meta.tags, meta.service.replace("_", " ")])
    yield from [meta.title] * TITLE_WEIGHT
    yield from [tags] * TAG_WEIGHT
    yield meta.summary
    yield guide.body


class GuideIndex:
    """BM25 over the guides' word forms."""

    def __init__(self, guides: Sequence[Guide]) -> None:
        self.guides = list(guides)
        self._tf: list[Counter[str]] = []
        df: Counter[str] = Counter()
        for guide in self.guides:
            counts = Counter(t for part in document_text(guide) for t in _terms(part))
            self._tf.append(counts)
            df.update(counts.keys())
        n = len(self.guides)
        self._idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self._length = [sum(c.values()) for c in self._tf]
        self._avg = (sum(self._length) / n) if n else 1.0
        self._postings: dict[str, list[int]] = {}
        for i, counts in enumerate(self._tf):
            for term in counts:
                self._postings.setdefault(term, []).append(i)

    def search(
        self,
        text: str,
        *,
        limit: int = 10,
        lang: str | None = None,
        public_only: bool = False,
        audience: str | None = None,
    ) -> list[Hit]:
        """The best guides for `text`, best first; only those that match some word."""
        scores: dict[int, float] = {}
        for word in query_words(text):
            best: dict[int, float] = {}
            for weight, form in weighted_forms(word):
                for i in self._postings.get(form, ()):
                    value = weight * self._bm25(i, form)
                    if value > best.get(i, 0.0):
                        best[i] = value
            for i, value in best.items():
                scores[i] = scores.get(i, 0.0) + value
        hits = [
            Hit(self.guides[i], score)
            for i, score in scores.items()
            if _wanted(self.guides[i], lang, public_only, audience)
        ]
        hits.sort(key=lambda h: (-h.score, h.guide.slug))
        return hits[:limit]

    def _bm25(self, i: int, term: str) -> float:
        tf = self._tf[i][term]
        norm = K1 * (1 - B + B * self._length[i] / self._avg)
        return self._idf[term] * tf * (K1 + 1) / (tf + norm)


def _wanted(guide: Guide, lang: str | None, public_only: bool, audience: str | None) -> bool:
    if lang is not None and guide.meta.lang != lang:
        return False
    if public_only and not guide.public:
        return False
    return audience is None or audience in guide.meta.audience


def keyword_baseline(
    guides: Sequence[Guide], text: str, *, limit: int, lang: str | None
) -> list[Guide]:
    """The plain keyword match the suggestions are measured against: lower-cased words split
    on spaces and punctuation, no folding and no stemming, ranked by how many of the
    question's words the guide contains (ties in slug order)."""
    asked = {w for w in _plain_words(text) if w not in STOPWORDS}
    ranked = []
    for guide in guides:
        if lang is not None and guide.meta.lang != lang:
            continue
        have = set(_plain_words(" ".join(document_text(guide))))
        shared = len(asked & have)
        if shared:
            ranked.append((-shared, guide.slug, guide))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [g for _, _, g in ranked[:limit]]


def _plain_words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()
