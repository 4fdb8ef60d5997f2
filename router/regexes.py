"""Every distinct config regex in RE2 sets, so one pass per field answers all of them.

Sets are kept small (CHUNK patterns) so RE2's DFA stays well inside its memory budget;
each pattern was already checked to compile alone (`omnidesk.text.compile_pattern`).
"""

from __future__ import annotations

import re2

from omnidesk.text import compile_pattern

CHUNK = 16


class RegexBank:
    def __init__(self) -> None:
        self._ids: dict[tuple[str, bool], int] = {}
        self._sets: list[tuple[int, re2.Set]] = []  # (first regex id, set)

    def add(self, pattern: str, ignore_case: bool) -> int:
        key = (pattern, ignore_case)
        if key not in self._ids:
            compile_pattern(pattern, ignore_case=ignore_case)  # a clean error if it is bad
            self._ids[key] = len(self._ids)
        return self._ids[key]

    def build(self) -> None:
        options = re2.Options()
        options.log_errors = False
        patterns = [("(?i)" if ic else "") + p for (p, ic) in self._ids]  # ids are in order
        for first in range(0, len(patterns), CHUNK):
            bank = re2.Set.SearchSet(options)
            for pattern in patterns[first : first + CHUNK]:
                bank.Add(pattern)
            bank.Compile()
            self._sets.append((first, bank))

    def search(self, text: str) -> frozenset[int]:
        """Ids of the regexes found in `text`."""
        if not text or not self._sets:
            return frozenset()
        encoded = text.encode("utf-8")
        found: list[int] = []
        for first, bank in self._sets:
            hits = bank.Match(encoded)  # the ids within this set of the regexes found, or None
            if hits:
                # google-re2-stubs types Set.Match as bool | None; it returns a list of ids
                found.extend(first + i for i in hits)  # type: ignore[attr-defined]
        return frozenset(found)
