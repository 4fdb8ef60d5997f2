"""Fixed-window rate limits in Redis for the public endpoints, per IP and per identity.

    P:rl:<scope>:<window start>:<sha256 of the subject, 24 hex>   string  hits; expires with
                                                                   its window

The subject (an IP, an e-mail, a phone, a ticket id) is hashed so no key names a person,
and every key expires on its own: nothing to clean up, and a daemon restart forgets nothing.
A client is counted by `client_key`: its IPv4 address, or its IPv6 /64 (one subscriber gets
a whole /64, so counting each address would give it unlimited tries).
"""

from __future__ import annotations

import hashlib
import ipaddress
import time

from omnidesk.store import Store, guarded

IPV6_PREFIX = 64


def client_key(remote: str | None) -> str:
    """What a client's limits count by: an IPv4 address as it is (an IPv4-mapped IPv6 one
    as the IPv4), an IPv6 address as its /64, anything else (no address) as given or "-"."""
    if not remote:
        return "-"
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


class RateLimiter:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _key(self, scope: str, subject: str, window_s: int) -> tuple[str, int, float]:
        now = time.time()
        start = int(now // window_s) * window_s
        digest = hashlib.sha256(subject.encode("utf-8", "replace")).hexdigest()[:24]
        return self.store.keys.ratelimit(scope, start, digest), start, now

    @guarded
    def hit(self, scope: str, subject: str, limit: int, window_s: int) -> int | None:
        """Count one hit; None while within `limit` hits this window, else the seconds
        until the window ends (for Retry-After)."""
        key, start, now = self._key(scope, subject, window_s)
        pipe = self.store.r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, window_s + 1)
        count, _ = pipe.execute()
        if int(count) <= limit:
            return None
        return max(1, int(start + window_s - now) + 1)

    @guarded
    def spent(self, scope: str, subject: str, limit: int, window_s: int) -> int | None:
        """Like `hit` without counting: None while fewer than `limit` hits were counted this
        window, else the seconds until it ends. For limits on failures, counted by `hit`
        only once a try failed."""
        key, start, now = self._key(scope, subject, window_s)
        count = self.store.r.get(key)
        if count is None or int(count) < limit:
            return None
        return max(1, int(start + window_s - now) + 1)
