"""Split a reply into posts X accepts: 280 weighted characters each.

X counts most scripts (Latin, Arabic, Hebrew, ...: code points below U+1100 and some
punctuation) as 1 and everything else (CJK, emoji) as 2, and any URL as 23.
"""

from __future__ import annotations

import re

TWEET_LIMIT = 280
URL_WEIGHT = 23
_URL = re.compile(r"https?://\S+")
_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))


def weighted_length(text: str) -> int:
    total = 0
    position = 0
    for match in _URL.finditer(text):
        total += _chars(text[position : match.start()]) + URL_WEIGHT
        position = match.end()
    return total + _chars(text[position:])


def _chars(text: str) -> int:
    return sum(1 if any(lo <= ord(ch) <= hi for lo, hi in _LIGHT) else 2 for ch in text)


def split_thread(text: str, limit: int = TWEET_LIMIT) -> list[str]:
    """Parts of at most `limit` weighted characters, cut at word boundaries where possible."""
    text = text.strip()
    if weighted_length(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    current = ""
    for word in re.split(r"(\s+)", text):
        candidate = current + word
        if weighted_length(candidate.strip()) <= limit:
            current = candidate
            continue
        if current.strip():
            parts.append(current.strip())
        current = word.lstrip()
        while weighted_length(current) > limit:  # one word longer than a post: cut it
            cut = _fit(current, limit)
            parts.append(current[:cut])
            current = current[cut:]
    if current.strip():
        parts.append(current.strip())
    return parts


def _fit(word: str, limit: int) -> int:
    """How many leading characters of `word` fit in `limit`."""
    count = 0
    for i, ch in enumerate(word):
        count += _chars(ch)
        if count > limit:
            return max(1, i)
    return len(word)


def split_plain(text: str, limit: int) -> list[str]:
    """Parts of at most `limit` characters (DMs allow 10,000), cut at whitespace."""
    parts: list[str] = []
    text = text.strip()
    while len(text) > limit:
        cut = text.rfind(" ", 0, limit + 1)
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*parts, text] if text else parts
