"""What the search index holds of a text, and what a query asks of it.

Both sides go through `omnidesk.text.fold` (the fold intake and the rules use), then a light
stemmer, and both are read by PostgreSQL's `simple` configuration, which only lower-cases:
so the index and the query agree word for word, whatever PostgreSQL's dictionaries do.

PostgreSQL's `arabic` snowball stems الشكاوى to شكاوي and شكوى to شكوي: a plural never meets
its singular. Here every Arabic word is indexed in up to three forms:
- the word as folded (ranked highest: it matches exactly what was typed);
- its light stem: the article and clitic prefixes (ال وال بال كال فال لل و) and common
  suffixes (ات ون ين ان ها ه ي يه) removed, as Larkey's "light10" does;
- its consonant skeleton: the stem without the long vowels ا و ي after its first letter,
  so a broken plural meets its singular (شكاوي → شك ← شكوي, مشاكل → مشكل ← مشكله).
English words get the word and a light stem (plural s, -ing, -ed, -ly; a final e dropped).
A query is the AND of its words, each the OR of that word's forms.
"""

from __future__ import annotations

import re
from functools import lru_cache

from omnidesk.model import SYSTEM_ACTORS
from omnidesk.text import fold

# A run of one script: Arabic letters, ASCII letters and digits, or any other letters. The
# index emits each run as its own space-separated word, so PostgreSQL's parser keeps it whole.
_RUN = re.compile(
    r"[\u0621-\u064A\u0671-\u06D3\u06FA-\u06FF]+"  # Arabic letters
    r"|[0-9a-z\u00DF-\u00F6\u00F8-\u024F]+"  # digits and Latin letters, folded
    r"|[^\W\d_\u0600-\u06FF]+"  # any other letters
)
_ARABIC = re.compile(r"[\u0621-\u064A\u0671-\u06D3\u06FA-\u06FF]")

_AR_PREFIXES = ("وبال", "وكال", "فبال", "وال", "بال", "كال", "فال", "لل", "ال")
_AR_SUFFIXES = ("ها", "ان", "ات", "ون", "ين", "يه", "ه", "ي")  # after fold: ة→ه, ى→ي
_AR_LONG_VOWELS = str.maketrans("", "", "اوي")
MIN_STEM = 2

# Words too common to narrow a search; dropped from queries (never from the index) unless
# the query has nothing else.
_STOPWORDS_TEXT = (
    "في من على إلى الى عن ضد مع هذا هذه ذلك تلك التي الذي الذين و أو او ثم قد لا ما هل "
    "أن ان إن كان كانت لم لن يا عند بعد قبل كل "
    "a an the of to in on at for from by with about against and or but is are was were "
    "be been it its this that these those i we you he she they my our your me us not no"
)
STOPWORDS = frozenset(fold(w) for w in _STOPWORDS_TEXT.split())

MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 12


def _arabic_stem(word: str) -> str:
    if len(word) > 3 and word.startswith("و") and not word.startswith(_AR_PREFIXES):
        word = word[1:]
    # Twice: a word whose own letters begin with ال (الكتروني, التزام) meets its form with
    # the article (الإلكتروني, بالالتزام) only if both lose every leading ال.
    for round_ in range(2):
        for prefix in _AR_PREFIXES:
            if word.startswith(prefix) and len(word) - len(prefix) >= MIN_STEM + round_:
                word = word[len(prefix) :]
                break
        else:
            break
    for suffix in _AR_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
            word = word[: -len(suffix)]
    return word


def _skeleton(stem: str) -> str:
    return stem[:1] + stem[1:].translate(_AR_LONG_VOWELS)


def _english_stem(word: str) -> str:
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "shes", "ches", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if suffix != "ly" and len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # shopping → shopp → shop
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]  # charge, charged, charging → charg
    return word


@lru_cache(maxsize=200_000)
def forms(word: str) -> tuple[str, ...]:
    """A folded word's index forms, most exact first, no duplicates."""
    if _ARABIC.match(word):
        stem = _arabic_stem(word)
        skeleton = _skeleton(stem)
        found = [word, stem] + ([skeleton] if len(skeleton) >= MIN_STEM else [])
    elif word.isdigit():
        found = [word]
    else:
        found = [word, _english_stem(word)]
    return tuple(dict.fromkeys(found))


def words(folded: str) -> list[str]:
    """The words of an already folded text, one script each."""
    return _RUN.findall(folded)


def search_document(*parts: str) -> str:
    """The text given to ``to_tsvector('simple', ...)`` for a message (subject, body): every
    word in each of its forms, space-separated."""
    folded = fold(" ".join(p for p in parts if p))
    return " ".join(f for w in words(folded) for f in forms(w))


def message_document(direction: str, author: str, subject: str, text: str) -> str:
    """A message's search document; empty for what the system sends by itself (a receipt,
    a guide or status answer, the CSAT survey): one template on every ticket would match
    every search. A customer's message is always indexed, whatever its author's name."""
    if direction == "out" and author in SYSTEM_ACTORS:
        return ""
    return search_document(subject, text)


def query_words(text: str) -> list[str]:
    """The words a query asks for: folded, stopwords dropped (unless that leaves none),
    duplicates dropped, at most MAX_QUERY_WORDS."""
    found = list(dict.fromkeys(words(fold(text[: MAX_QUERY_CHARS * 2]))))
    kept = [w for w in found if w not in STOPWORDS] or found
    return kept[:MAX_QUERY_WORDS]


def _lexeme(form: str) -> str:
    # Words are letters or digits only, so this never fires; it keeps the quoting honest
    # should the word pattern ever widen.
    return "'" + form.replace("\\", "\\\\").replace("'", "''") + "'"


def search_query(text: str) -> str:
    """A ``to_tsquery('simple', ...)`` string for what a user typed: the AND of its words,
    each the OR of its forms. Empty when the text has no word. User text only ever becomes
    quoted lexemes, so no input is a tsquery syntax error."""
    groups = []
    for word in query_words(text):
        alternatives = " | ".join(_lexeme(f) for f in forms(word))
        groups.append(f"({alternatives})")
    return " & ".join(groups)


def query_forms(text: str) -> set[str]:
    """Every form a query's words match: what the snippet highlights."""
    return {f for w in query_words(text) for f in forms(w)}


def word_matches(original: str, wanted: set[str]) -> bool:
    """Whether an original (unfolded) word of a message matches one of the query's forms."""
    return any(f in wanted for w in words(fold(original)) for f in forms(w))
