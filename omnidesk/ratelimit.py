"""Fixed-window rate limits in Redis for the public endpoints, per IP and per identity.

    P:rl:<scope>:<window start>:<sha256 of the subject, 24 hex>   string  hits; expires with
                                                                   its window

The subject (an IP, an e-mail, a phone) is hashed so no key names a person, and every key
expires on its own: nothing to clean up, and a daemon restart forgets nothing.
"""

from __future__ import annotations

import hashlib
import time

from omnidesk.store import Store, guarded


class RateLimiter:
    def __init__(self, store: Store) -> None:
        self.store = store

    @guarded
    def hit(self, scope: str, subject: str, limit: int, window_s: int) -> int | None:
        """Count one hit; None while within `limit` hits this window, else the seconds
        until the window ends (for Retry-After)."""
        now = time.time()
        start = int(now // window_s) * window_s
        digest = hashlib.sha256(subject.encode("utf-8", "replace")).hexdigest()[:24]
        key = self.store.key("rl", scope, str(start), digest)
        pipe = self.store.r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, window_s + 1)
        count, _ = pipe.execute()
        if int(count) <= limit:
            return None
        return max(1, int(start + window_s - now) + 1)
