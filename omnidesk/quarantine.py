"""The quarantine: every payload that could not be normalized, with its reason, bounded.

Redis-backed: ``P:quarantine:<id>`` is a hash (channel, account, source, reason, error,
received_at, quarantined_at, sha256, size, attempts, kept, and the payload bytes or a head
excerpt) and ``P:quarantine`` a sorted index by quarantine time. The id is derived from
channel, account and content, so the same bad payload quarantined twice (a retried batch) is
one item. `retry` lives in omnidesk.pipeline (it needs the runtime's normalize and route).

Junk must not fill Redis (`service.quarantine` in the config):
- a payload over `item_max_bytes`, or one that would take the bytes kept in all past
  `max_bytes`, is kept as its first `excerpt_bytes` and its sha256; the whole payload stays
  on disk in the content-addressed archive, where `get` reads it back for a retry;
- items older than `max_age_days` are purged on every put (a bounded batch) and by
  `omnidesk quarantine purge`;
- every rejection is counted by reason in ``P:stats`` (``rejected:<reason>``,
  ``rejected_bytes:<reason>``), which /metrics shows, whether its payload is kept or not.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection
from datetime import datetime
from typing import Any

import msgspec

from omnidesk.archive import Archive
from omnidesk.config import QuarantineLimits
from omnidesk.errors import PayloadError
from omnidesk.events import EventType
from omnidesk.model import Channel, RawPayload, utcnow
from omnidesk.replies import data as data_of
from omnidesk.replies import texts
from omnidesk.store import Store, guarded, lua

_AUTO_PURGE_BATCH = 100  # items a put may purge, so a put's cost stays bounded


class QuarantineItem(msgspec.Struct, kw_only=True):
    id: str
    channel: Channel
    account: str
    source: str
    reason: str  # short machine word from PayloadError.reason
    error: str  # the one-line message
    received_at: datetime
    quarantined_at: datetime
    sha256: str
    size: int
    attempts: int = 1
    kept: int = -1  # payload bytes held in Redis; 0: the excerpt only; -1: kept before caps
    archived: bool = False  # the whole payload is in the archive on disk
    payload: bytes = b""  # from Redis, or read back from the archive by Quarantine.get
    excerpt: bytes = b""

    @property
    def whole(self) -> bool:
        """The payload bytes are all here (from Redis or the archive)."""
        return len(self.payload) == self.size

    def raw(self) -> RawPayload:
        if not self.whole:
            raise PayloadError(
                f"{self.id}: only a {len(self.excerpt)}-byte excerpt of the {self.size}-byte"
                " payload was kept and the archive does not have it",
                reason="not_kept",
            )
        return RawPayload(
            channel=self.channel,
            account=self.account,
            payload=self.payload,
            received_at=self.received_at,
            source=self.source,
        )


def item_id(raw: RawPayload) -> str:
    h = hashlib.sha256(f"{Channel(raw.channel).value}\0{raw.account}\0".encode() + raw.payload)
    return "Q-" + h.hexdigest()[:16]


class Quarantine:
    def __init__(
        self,
        store: Store,
        limits: QuarantineLimits | None = None,
        archive: Archive | None = None,
    ) -> None:
        self.store = store
        self.limits = limits or QuarantineLimits()
        self.archive = archive
        self.rb = store.binary()  # payloads are bytes
        self._put = self.rb.register_script(lua("quarantine_put"))
        self._drop = self.rb.register_script(lua("quarantine_drop"))

    def _key(self, qid: str = "") -> str:
        return self.store.keys.quarantine_item(qid) if qid else self.store.keys.quarantine()

    @guarded
    def put(self, raw: RawPayload, reason: str, error: str) -> str:
        self.purge(limit=_AUTO_PURGE_BATCH)  # first, so what expired makes room
        qid = item_id(raw)
        now = utcnow()
        size = len(raw.payload)
        sha256 = raw.sha256
        fields: dict[str, Any] = {
            "id": qid,
            "channel": Channel(raw.channel).value,
            "account": raw.account,
            "source": raw.source,
            "reason": reason,
            "error": error[:2000],
            "received_at": raw.received_at.isoformat(),
            "quarantined_at": now.isoformat(),
            "sha256": sha256,
            "size": size,
            "archived": "1" if self._archived(sha256) else "0",
        }
        offered = raw.payload if size <= self.limits.item_max_bytes else b""
        args: list[Any] = [qid, now.timestamp(), self.limits.max_bytes]
        args += [offered, raw.payload[: self.limits.excerpt_bytes]]
        for name, value in fields.items():
            args += [name, value]
        pipe = self.rb.pipeline(transaction=True)
        self._put(keys=[self.store.prefix], args=args, client=pipe)
        stats = self.store.keys.stats()
        pipe.hincrby(stats, "quarantined", 1)
        pipe.hincrby(stats, f"rejected:{reason}", 1)
        pipe.hincrby(stats, f"rejected_bytes:{reason}", size)
        pipe.xadd(
            self.store.keys.events(),
            {
                "type": EventType.QUARANTINED.value,
                "ticket": "",
                "queue": "",
                "channel": Channel(raw.channel).value,
                "actor": "ingest",
                "ts": int(now.timestamp() * 1000),
                "item": qid,
                "reason": reason,
            },
        )
        pipe.execute()
        return qid

    def _archived(self, sha256: str) -> bool:
        return self.archive is not None and self.archive.path(sha256).is_file()

    @guarded
    def get(self, qid: str) -> QuarantineItem | None:
        """One item; a payload not kept in Redis is read back from the archive if it is there."""
        fields = self.rb.hgetall(self._key(qid))
        if not fields:
            return None
        raw_fields = (b"payload", b"excerpt")
        data = {
            k.decode(): v if k in raw_fields else v.decode()
            for k, v in ((data_of(k), data_of(v)) for k, v in fields.items())
        }
        item = msgspec.convert(data, QuarantineItem, strict=False)
        if not item.whole and self.archive is not None:
            item.payload = self.archive.get(item.sha256) or b""
        return item

    @guarded
    def list(self, limit: int = 100) -> list[QuarantineItem]:
        """Newest first, without the payload bytes."""
        ids = texts(self.store.r.zrevrange(self._key(), 0, max(0, limit - 1)))
        pipe = self.store.r.pipeline(transaction=False)
        fields = ("id", "channel", "account", "source", "reason", "error", "received_at")
        more = ("quarantined_at", "sha256", "size", "attempts", "kept", "archived")
        for qid in ids:
            pipe.hmget(self._key(qid), *fields, *more)
        out = []
        for values in pipe.execute():
            if values[0] is None:
                continue
            data = {k: v for k, v in zip(fields + more, values, strict=True) if v is not None}
            out.append(msgspec.convert(data, QuarantineItem, strict=False))
        return out

    @guarded
    def size(self) -> int:
        return int(self.store.r.zcard(self._key()))

    @guarded
    def remove(self, qid: str) -> bool:
        return bool(self._drop(keys=[self.store.prefix], args=[qid]))

    @guarded
    def purge(
        self,
        older_than_s: float | None = None,
        *,
        limit: int | None = None,
        reasons: Collection[str] | None = None,
    ) -> int:
        """Drop items quarantined more than `older_than_s` ago (default: the age limit), only
        those whose reason is one of `reasons` when given, at most `limit` of them (default:
        all); returns how many went. Their rejections stay counted in the stats."""
        if older_than_s is None:
            older_than_s = self.limits.max_age_days * 86400
        cutoff = time.time() - older_than_s
        wanted = set(reasons) if reasons else None
        purged = skipped = 0
        while limit is None or purged < limit:
            batch = 500 if limit is None else min(500, limit - purged)
            ids = texts(
                self.store.r.zrangebyscore(self._key(), "-inf", cutoff, start=skipped, num=batch)
            )
            if not ids:
                break
            if wanted is not None:
                pipe = self.store.r.pipeline(transaction=False)
                for qid in ids:
                    pipe.hget(self._key(qid), "reason")
                chosen = [q for q, r in zip(ids, pipe.execute(), strict=True) if r in wanted]
                skipped += len(ids) - len(chosen)  # kept: the next page starts past them
                ids = chosen
            if ids:
                self._drop(keys=[self.store.prefix], args=ids)
                purged += len(ids)
        if purged:
            self.store.incr("quarantine_purged", purged)
        return purged

    @guarded
    def usage(self) -> dict[str, Any]:
        """Items, payload bytes held in Redis, and rejections (and their bytes) by reason."""
        pipe = self.store.r.pipeline(transaction=False)
        pipe.zcard(self._key())
        pipe.get(self.store.keys.quarantine_bytes())
        pipe.hgetall(self.store.keys.stats())
        items, kept, stats = pipe.execute()
        rejected = {k[9:]: int(v) for k, v in stats.items() if k.startswith("rejected:")}
        sizes = {k[15:]: int(v) for k, v in stats.items() if k.startswith("rejected_bytes:")}
        return {
            "items": int(items),
            "bytes_kept": int(kept or 0),
            "rejected": rejected,
            "rejected_bytes": sizes,
            "purged": int(stats.get("quarantine_purged", 0)),
        }
