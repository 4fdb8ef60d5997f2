"""Redis replies as the types our clients really get.

redis-py 8 types every reply as ``bytes | str`` (and a range as any of its shapes), since
its types cannot see ``decode_responses``. The store's client decodes (``str``), its
`binary()` client does not (``bytes``). These functions narrow a reply to the one its client
returns, checked at run time, so a client of the wrong kind fails here by name instead of
further on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

Entries = list[tuple[str, dict[str, str]]]
_K = TypeVar("_K")
_V = TypeVar("_V")


def text(reply: object) -> str:
    """A decoded client's reply."""
    if isinstance(reply, str):
        return reply
    raise TypeError(f"expected a decoded Redis reply (str), got {type(reply).__name__}")


def text_or_none(reply: object) -> str | None:
    """A decoded client's reply to a read that may find nothing (GET, HGET)."""
    return None if reply is None else text(reply)


def texts(reply: Iterable[object]) -> list[str]:
    """A decoded client's members (SMEMBERS, ZRANGE without scores, SSCAN's page)."""
    return [text(member) for member in reply]


def text_fields(reply: Mapping[_K, _V]) -> dict[str, str]:
    """A decoded client's hash (HGETALL) or stream entry's fields."""
    return {text(k): text(v) for k, v in reply.items()}


def entries(reply: Iterable[tuple[object, Mapping[_K, _V] | None]] | None) -> Entries:
    """A decoded client's stream entries (XRANGE, XREVRANGE): (id, fields) in the server's
    order; an entry trimmed away under a reader has no fields."""
    return [(text(eid), text_fields(fields or {})) for eid, fields in reply or []]


def read_entries(reply: Iterable[Sequence[Any]] | Mapping[Any, Any] | None) -> Entries:
    """XREAD's entries over every stream it read, in the reply's order: RESP2 answers
    ``[[stream, entries], ...]``, RESP3 ``{stream: entries}``; None when the block timed out."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, Mapping) else (pair[1] for pair in reply)
    return [entry for stream in streams for entry in entries(stream)]


def data(reply: object) -> bytes:
    """The binary client's reply."""
    if isinstance(reply, bytes):
        return reply
    raise TypeError(f"expected a binary Redis reply (bytes), got {type(reply).__name__}")


def scored_data(reply: Iterable[object]) -> list[tuple[bytes, float]]:
    """The binary client's members with their scores (ZRANGE ... WITHSCORES)."""
    out = []
    for pair in reply:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(f"expected a (member, score) pair, got {type(pair).__name__}")
        out.append((data(pair[0]), float(pair[1])))
    return out


def data_or_none(reply: object) -> bytes | None:
    """The binary client's reply to a read that may find nothing."""
    return None if reply is None else data(reply)
