"""Split a mail body into the new text, the quoted reply history and the signature.

Nothing is dropped: the three parts together hold every line of the body. The ticket shows
the new text first; agents can still open the history.
"""

from __future__ import annotations

import re

# A line that opens the quoted history (the history runs from it to the end).
_QUOTE_HEADERS = re.compile(
    r"""^(?:
        -{2,}\s*(?:Original\ Message|Forwarded\ message|Message\ d'origine|الرسالة\ الأصلية
            |رسالة\ معاد\ توجيهها|الرسالة\ المعاد\ توجيهها)\s*-{2,}
      | _{10,}
      | Begin\ forwarded\ message:
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_FORWARD_HEADER = re.compile(
    r"^-{2,}\s*(?:Forwarded message|رسالة معاد توجيهها|الرسالة المعاد توجيهها)|^Begin forwarded",
    re.IGNORECASE,
)
_ON_WROTE = re.compile(
    r"^(?:On|Le|Am|El)\s.{4,300}(?:wrote|a écrit|schrieb|escribió)\s*:\s*$", re.IGNORECASE
)
_ON_START = re.compile(r"^On\s.*\d", re.IGNORECASE)
_ARABIC_WROTE = re.compile(
    r"^(?:في|فى|بتاريخ|يوم)\s.{4,300}كتب.{0,200}:\s*$"  # في الأحد، ... كتب أحمد <a@b>:
    r"|^.{0,200}كتب\s*\(?ت?\)?\s*:\s*$"  # ... كتب:
)
# Outlook's header block: "From: ..." then "Sent:"/"Date:" within the next lines.
_OUTLOOK_FROM = re.compile(r"^\*?(?:From|من|De|Von)\s*:\*?\s", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(
    r"^\*?(?:Sent|Date|التاريخ|تاريخ الإرسال|تم الإرسال|أرسل|Envoyé|Gesendet)\s*:", re.I
)
_SIG_DELIMITER = re.compile(r"^--\s?$")
_CLOSINGS = re.compile(
    r"""^(?:
        (?:best|kind|warm)?\s*regards|best|thanks(?:\ and\ regards)?|thank\ you|cheers|sincerely
      | yours\ (?:sincerely|faithfully|truly)
      | sent\ from\ my\ \w+.*|get\ outlook\ for\ .*
      | مع\ (?:خالص\ )?(?:التحية|التحيه|التقدير|الشكر)(?:\ والتقدير)?|تحياتي
      | وتقبلوا\ (?:فائق\ )?(?:التحية|الاحترام|تحياتي)
      | شكرا(?:\ لكم|\ جزيلا)?|شكراً(?:\ لكم|\ جزيلاً)?|وشكرا|ولكم\ جزيل\ الشكر|أرسلت\ من\ .*
    )[\s,.!،:]*$""",
    re.IGNORECASE | re.VERBOSE,
)
_SIG_WINDOW = 8  # closings count only near the end of the new text
_HAS_WORDS = re.compile(r"\w")


def _quote_start(lines: list[str]) -> tuple[int, bool] | None:
    """Index of the first history line, and whether it opens a forwarded message."""
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        if s.startswith(">"):
            # Interleaved answers below the quote mean the whole body is the new text.
            rest = lines[i:]
            if any(r.strip() and not r.lstrip().startswith(">") for r in rest[1:]):
                tail = [r for r in rest if r.strip() and not r.lstrip().startswith(">")]
                if not _looks_like_signature(tail):
                    return None
            return i, False
        if _QUOTE_HEADERS.match(s) or _ON_WROTE.match(s) or _ARABIC_WROTE.match(s):
            return i, bool(_FORWARD_HEADER.match(s))
        if _ON_START.match(s) and i + 1 < len(lines) and lines[i + 1].strip().endswith("wrote:"):
            return i, False
        if _OUTLOOK_FROM.match(s):
            window = lines[i + 1 : i + 5]
            if any(_OUTLOOK_SENT.match(w.strip()) for w in window):
                return i, False
    return None


def _looks_like_signature(lines: list[str]) -> bool:
    if len(lines) > 6:
        return False
    return any(_SIG_DELIMITER.match(x) or _CLOSINGS.match(x.strip()) for x in lines)


def _signature_start(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        if _SIG_DELIMITER.match(line.rstrip("\r")) and line.startswith("--"):
            return i if any(_HAS_WORDS.search(x) for x in lines[:i]) else None
    start = max(0, len(lines) - _SIG_WINDOW)
    for i in range(start, len(lines)):
        s = lines[i].strip()
        if len(s) <= 40 and _CLOSINGS.match(s) and any(_HAS_WORDS.search(x) for x in lines[:i]):
            return i
    return None


def split_body(body: str) -> tuple[str, str, str]:
    """(new text, quoted history, signature), each stripped."""
    lines = body.split("\n")
    quoted = ""
    found = _quote_start(lines)
    if found is not None:
        index, forwarded = found
        head = lines[:index]
        if forwarded and not any(_HAS_WORDS.search(x) for x in head):
            pass  # a bare forward: the forwarded message is what the customer sends us
        else:
            quoted = "\n".join(lines[index:]).strip()
            lines = head
    signature = ""
    sig = _signature_start(lines)
    if sig is not None:
        signature = "\n".join(lines[sig:]).strip()
        lines = lines[:sig]
    return "\n".join(lines).strip(), quoted, signature
