"""Rate limits in Redis for the public endpoints, per IP and per identity: at most `limit`
hits in a window that starts at a subject's first hit (not at a wall-clock boundary, which
would reset a count mid-burst).

    P:rl:<scope>:<sha256 of the subject, 24 hex>   string  hits; expires when its window ends

The subject (an IP, an e-mail, a phone, a ticket id) is hashed so no key names a person,
and every key expires on its own: nothing to clean up, and a daemon restart forgets nothing.
A client is counted by `client_key`: its IPv4 address, or its IPv6 /64 (one subscriber gets
a whole /64, so counting each address would give it unlimited tries).
"""

from __future__ import annotations

import hashlib
import ipaddress

from redis import Redis

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


def count_in_window(r: Redis, key: str, window_s: int) -> tuple[int, int]:
    """Count one hit on `key`: (hits in its window, seconds until the window ends). The
    window starts at the first hit (EXPIRE NX) and the key goes with it."""
    pipe = r.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, window_s, nx=True)
    pipe.ttl(key)
    count, _, ttl = pipe.execute()
    return int(count), max(int(ttl), 0)


class RateLimiter:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _key(self, scope: str, subject: str) -> str:
        digest = hashlib.sha256(subject.encode("utf-8", "replace")).hexdigest()[:24]
        return self.store.keys.ratelimit(scope, digest)

    @guarded
    def hit(self, scope: str, subject: str, limit: int, window_s: int) -> int | None:
        """Count one hit; None while within `limit` hits this window, else the seconds
        until the window ends (for Retry-After)."""
        count, ttl = count_in_window(self.store.r, self._key(scope, subject), window_s)
        return None if count <= limit else max(1, ttl)

    @guarded
    def spent(self, scope: str, subject: str, limit: int, window_s: int) -> int | None:
        """Like `hit` without counting: None while fewer than `limit` hits were counted this
        window, else the seconds until it ends. For limits on failures, counted by `hit`
        only once a try failed."""
        pipe = self.store.r.pipeline(transaction=True)
        key = self._key(scope, subject)
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
        if count is None or int(count) < limit:
            return None
        return max(1, int(ttl))
