"""Connector state kept in Redis: cursors and leases, shared by every connector.

A cursor is one JSON value per connector (the IMAP UID per folder, the Telegram
offset, the X since_id). A lease makes one `omnidesk run` instance at a time the
poller of an account: a redis-py `Lock` (SET NX PX to take it, its token-checked scripts
to renew and release it), so a holder that died is replaced once its lease expires,
or at once by a daemon on the same host that sees the holder's process is gone.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.lock import Lock

from omnidesk.errors import StoreUnavailable

_T = TypeVar("_T")


async def _redis_call(what: str, call: Callable[[], Awaitable[_T]]) -> _T:
    """Redis errors become ours here, at the boundary."""
    try:
        return await call()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise StoreUnavailable(f"redis unavailable while {what}: {exc}") from exc


class CursorStore:
    """One JSON cursor per connector name, under `<prefix>:cursor:<name>`."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}:cursor:{name}"

    async def get(self, name: str) -> Any | None:
        raw = await _redis_call("reading a cursor", lambda: self.client.get(self.key(name)))
        return None if raw is None else json.loads(raw)

    async def set(self, name: str, value: Any) -> None:
        data = json.dumps(value, sort_keys=True)
        await _redis_call("writing a cursor", lambda: self.client.set(self.key(name), data))

    async def delete(self, name: str) -> None:
        await _redis_call("deleting a cursor", lambda: self.client.delete(self.key(name)))


def _pid_namespace() -> str:
    """Which pid namespace this process lives in (containers on one host share a name)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def default_token() -> str:
    """Who holds a lease, readable in Redis: host, pid, a random suffix and the pid
    namespace, so a daemon restarted on the same host can tell its dead predecessor."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{_pid_namespace()}"


def holder_is_dead_here(holder: str) -> bool:
    """True when `holder` is a process of this host and pid namespace that no longer runs
    (a daemon killed and restarted): its lease need not be waited out."""
    parts = holder.split(":")
    if len(parts) != 4 or not parts[3] or not parts[1].isdigit():
        return False
    host, pid, _, namespace = parts
    if host != socket.gethostname() or namespace != _pid_namespace():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    return False


class Lease:
    """An expiring lock on one account, `<prefix>:lease:<name>`, held by `token`.

    The holder renews it well within `ttl` seconds; if it dies, the key expires and
    another instance's `acquire` succeeds, so failover takes at most `ttl` plus the
    standby's retry interval. The lock itself is redis-py's `Lock`, whose scripts touch
    the key only while it holds our token; this class adds the takeover from a dead
    holder on this host and maps lost ownership onto False.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        name: str,
        ttl: float = 30.0,
        token: str | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("lease ttl must be positive")
        self.client = client
        self.key = f"{prefix}:lease:{name}"
        self.ttl = ttl
        self.token = token or default_token()
        # One lock per Lease, shared by the tasks of one loop: the token is not per thread.
        self.lock = Lock(client, self.key, timeout=ttl, blocking=False, thread_local=False)

    async def acquire(self) -> bool:
        """Take the lease if it is free, or extend it if we already hold it, or take it
        over from a holder on this host whose process is gone (a crash and restart)."""
        if await self._take() or await self.renew():
            return True
        holder = await self.holder()
        if holder is None or not holder_is_dead_here(holder):
            return False
        # Drop the dead holder's lock, only while it still names that holder (if it expired
        # or moved on meanwhile, whoever holds it now keeps it) ...
        with suppress(redis.exceptions.LockNotOwnedError):
            await _redis_call("taking over a lease", lambda: self.lock.do_release(holder.encode()))
        return await self._take()  # ... then race for it like any other instance

    async def _take(self) -> bool:
        return bool(
            await _redis_call("taking a lease", lambda: self.lock.acquire(token=self.token))
        )

    async def renew(self) -> bool:
        """Extend our lease to a full ttl; False when it expired or someone else holds it."""
        try:
            return await _redis_call("renewing a lease", self.lock.reacquire)
        except redis.exceptions.LockError:  # never taken here, released, or no longer ours
            return False

    async def release(self) -> bool:
        """Give the lease up at once (graceful stop), only if it is still ours."""
        try:
            await _redis_call("releasing a lease", self.lock.release)
        except redis.exceptions.LockError:
            return False
        return True

    async def held(self) -> bool:
        return await self.holder() == self.token

    async def holder(self) -> str | None:
        value = await _redis_call("reading a lease", lambda: self.client.get(self.key))
        return value.decode() if isinstance(value, bytes) else value
