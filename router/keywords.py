"""One Aho-Corasick automaton for every keyword of every rule.

Keywords and texts are folded the same way (`facts.fold_words`). A keyword matches as a
*word* when the characters on either side of it are not word characters: letters and
digits of any script, and "_" (exactly Python's `\\w`). Arabic prefixes are part of the
word, so `شكوى` does not word-match `الشكاوى`; it matches there only as a substring.
"""

from __future__ import annotations

import ahocorasick

SUBJECT = 1  # field bits of a hit mask
TEXT = 2
FIELD_BITS = {"subject": SUBJECT, "text": TEXT, "any": SUBJECT | TEXT}
FIELD_NAMES = {SUBJECT: "subject", TEXT: "text", SUBJECT | TEXT: "subject/text"}


def is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class Hits:
    """Which keywords a message contains: keyword id -> field mask, as substring and as word."""

    __slots__ = ("substring", "word")

    def __init__(self) -> None:
        self.substring: dict[int, int] = {}
        self.word: dict[int, int] = {}


class KeywordIndex:
    """Assigns ids to distinct folded keywords, then scans a message once for all of them."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._automaton: ahocorasick.Automaton | None = None

    def add(self, folded: str) -> int:
        """The id of a folded keyword; the empty keyword gets -1 and never matches."""
        if not folded:
            return -1
        kid = self._ids.get(folded)
        if kid is None:
            kid = self._ids[folded] = len(self._ids)
        return kid

    def __len__(self) -> int:
        return len(self._ids)

    def build(self) -> None:
        automaton = ahocorasick.Automaton()
        for word, kid in self._ids.items():
            automaton.add_word(word, (kid, len(word)))
        if self._ids:
            automaton.make_automaton()
            self._automaton = automaton

    def scan(self, folded_subject: str, folded_text: str) -> Hits:
        """Every keyword occurrence in subject and text, with word-boundary checks.

        Subject and text are scanned as one string joined by a newline; folded texts hold
        no newlines (whitespace is collapsed), so no keyword can span the two.
        """
        hits = Hits()
        if self._automaton is None:
            return hits
        hay = folded_subject + "\n" + folded_text
        split = len(folded_subject)
        last = len(hay) - 1
        substring, word = hits.substring, hits.word
        for end, (kid, length) in self._automaton.iter(hay):
            bit = SUBJECT if end < split else TEXT
            substring[kid] = substring.get(kid, 0) | bit
            start = end - length + 1
            if (start == 0 or not is_word_char(hay[start - 1])) and (
                end == last or not is_word_char(hay[end + 1])
            ):
                word[kid] = word.get(kid, 0) | bit
        return hits
