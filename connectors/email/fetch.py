"""Reading a `UID FETCH (UID INTERNALDATE BODY.PEEK[])` answer as imaplib2 returns it: pure,
no I/O, so it can be tested on the shapes servers really send.

RFC 3501 lets a server send a message's data items in any order: Dovecot sends
`* 1 FETCH (UID 5 BODY[] {n}`, others `* 1 FETCH (BODY[] {n} ... UID 5)`. imaplib2 hands
each response over as pieces: a `(text before the literal, literal)` tuple per literal and
the text after it as plain bytes. The pieces of one response are joined here before
anything is looked up in them, so the order of the items does not matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_START = re.compile(rb"^\s*(\d+) \(")  # "<seq> (": a new FETCH response begins
_UID = re.compile(rb"[\s(]UID (\d+)")
_INTERNALDATE = re.compile(rb'[\s(]INTERNALDATE "([^"]{10,40})"')
_BODY_LITERAL = re.compile(rb"[\s(]BODY\[\](?:<0>)? \{\d+\}$")
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
)}  # fmt: skip
_DATE = re.compile(r"^ ?(\d{1,2})-([A-Z][a-z]{2})-(\d{4}) (\d\d):(\d\d):(\d\d) ([-+])(\d\d)(\d\d)$")


@dataclass
class Fetched:
    """One message of the answer: its UID, raw bytes and the server's INTERNALDATE."""

    uid: int
    body: bytes
    internal_date: datetime | None = None


@dataclass
class FetchAnswer:
    """The messages by UID, and a line for each piece that could not be read."""

    messages: dict[int, Fetched] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class _Response:
    text: bytes  # every piece outside the literals, joined
    body: bytes | None = None


def parse_fetch(data: list[Any] | None) -> FetchAnswer:
    """The messages in a FETCH answer; a response with a body but no readable UID, or with
    an unreadable INTERNALDATE, is named in `problems` (the caller logs it) and never
    dropped without a word. Responses without a body (unsolicited FLAGS) are ignored."""
    answer = FetchAnswer()
    for response in _group(data or [], answer.problems):
        uid = _UID.search(response.text)
        if response.body is None:
            continue
        if uid is None:
            answer.problems.append(f"FETCH response with a body but no UID: {_show(response)}")
            continue
        answer.messages[int(uid.group(1))] = Fetched(
            uid=int(uid.group(1)),
            body=response.body,
            internal_date=_internal_date(response, answer.problems),
        )
    return answer


def _group(data: list[Any], problems: list[str]) -> list[_Response]:
    """imaplib2's pieces joined back into one response per message."""
    responses: list[_Response] = []
    for piece in data:
        if isinstance(piece, tuple) and len(piece) >= 2 and isinstance(piece[0], bytes):
            head, literal = piece[0], piece[1]
        elif isinstance(piece, bytes):
            head, literal = piece, None
        else:
            if piece is not None:
                problems.append(f"FETCH answer piece of type {type(piece).__name__} ignored")
            continue
        if _START.match(head) or not responses:
            responses.append(_Response(text=head))
        else:
            responses[-1].text += head
        if literal is not None and _BODY_LITERAL.search(head):
            responses[-1].body = literal if isinstance(literal, bytes) else bytes(literal)
    return responses


def _internal_date(response: _Response, problems: list[str]) -> datetime | None:
    found = _INTERNALDATE.search(response.text)
    if found is None:
        return None
    text = found.group(1).decode("ascii", "replace")
    parsed = parse_internal_date(text)
    if parsed is None:
        problems.append(f"unreadable INTERNALDATE {text!r}: {_show(response)}")
    return parsed


def parse_internal_date(text: str) -> datetime | None:
    """RFC 3501 date-time (`" 4-Dec-2026 16:05:09 +0300"`) as an aware UTC time; None when
    it is not one (locale-free, unlike strptime's %b)."""
    found = _DATE.match(text)
    if found is None or found.group(2) not in _MONTHS:
        return None
    day, _, year, hour, minute, second, sign, zh, zm = found.groups()
    try:
        local = datetime(int(year), _MONTHS[found.group(2)], int(day),
                         int(hour), int(minute), int(second), tzinfo=UTC)  # fmt: skip
    except ValueError:
        return None
    offset = (int(zh) * 60 + int(zm)) * (1 if sign == "+" else -1)
    return datetime.fromtimestamp(local.timestamp() - offset * 60, UTC)


def _show(response: _Response) -> str:
    """What the server sent, outside the literal, short enough for one log line."""
    return repr(response.text[:200])
