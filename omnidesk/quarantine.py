"""The quarantine: every payload that could not be normalized, kept whole with its reason.

Redis-backed: ``P:quarantine:<id>`` is a hash (channel, account, source, reason, error,
received_at, quarantined_at, sha256, attempts, payload bytes) and ``P:quarantine`` a sorted
index by quarantine time. The id is derived from channel, account and content, so the same
bad payload quarantined twice (a retried batch) is one item. `retry` lives in
omnidesk.pipeline (it needs the runtime's normalize and route).
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

import msgspec

from omnidesk.model import Channel, RawPayload, utcnow
from omnidesk.store import Store, guarded


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
    payload: bytes = b""

    def raw(self) -> RawPayload:
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
    def __init__(self, store: Store) -> None:
        self.store = store
        self.rb = store.binary()  # payloads are bytes

    def _key(self, qid: str = "") -> str:
        return self.store.key("quarantine", qid) if qid else self.store.key("quarantine")

    @guarded
    def put(self, raw: RawPayload, reason: str, error: str) -> str:
        qid = item_id(raw)
        now = utcnow()
        key = self._key(qid)
        fields = {
            "id": qid,
            "channel": Channel(raw.channel).value,
            "account": raw.account,
            "source": raw.source,
            "reason": reason,
            "error": error[:2000],
            "received_at": raw.received_at.isoformat(),
            "quarantined_at": now.isoformat(),
            "sha256": raw.sha256,
            "size": len(raw.payload),
            "payload": raw.payload,
        }
        pipe = self.rb.pipeline(transaction=True)
        pipe.hset(key, mapping=fields)
        pipe.hincrby(key, "attempts", 1)
        pipe.zadd(self._key(), {qid: time.time()}, nx=True)
        pipe.hincrby(self.store.key("stats"), "quarantined", 1)
        pipe.xadd(
            self.store.key("events"),
            {
                "type": "quarantined",
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

    @guarded
    def get(self, qid: str) -> QuarantineItem | None:
        fields = self.rb.hgetall(self._key(qid))
        if not fields:
            return None
        data = {k.decode(): v if k == b"payload" else v.decode() for k, v in fields.items()}
        return msgspec.convert(data, QuarantineItem, strict=False)

    @guarded
    def list(self, limit: int = 100) -> list[QuarantineItem]:
        """Newest first, without the payload bytes."""
        ids = self.store.r.zrevrange(self._key(), 0, max(0, limit - 1))
        pipe = self.store.r.pipeline(transaction=False)
        fields = ("id", "channel", "account", "source", "reason", "error", "received_at")
        more = ("quarantined_at", "sha256", "size", "attempts")
        for qid in ids:
            pipe.hmget(self._key(qid), *fields, *more)
        out = []
        for values in pipe.execute():
            if values[0] is None:
                continue
            data = dict(zip(fields + more, values, strict=True))
            out.append(msgspec.convert(data, QuarantineItem, strict=False))
        return out

    @guarded
    def size(self) -> int:
        return int(self.store.r.zcard(self._key()))

    @guarded
    def remove(self, qid: str) -> bool:
        pipe = self.store.r.pipeline(transaction=True)
        pipe.delete(self._key(qid))
        pipe.zrem(self._key(), qid)
        return bool(pipe.execute()[0])
