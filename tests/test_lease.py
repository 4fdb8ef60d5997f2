"""Leases and cursors against real Redis: one holder at a time, takeover on expiry."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from connectors.base import Connector, Sink, reconnect_loop
from connectors.state import CursorStore, Lease, default_token
from tests.services import eventually


async def test_cursor_roundtrip(redis_prefix):
    client, prefix = redis_prefix
    store = CursorStore(client, prefix)
    assert await store.get("support") is None
    await store.set("support", {"folders": {"INBOX": {"uidvalidity": 7, "uid": 42}}})
    assert await store.get("support") == {"folders": {"INBOX": {"uidvalidity": 7, "uid": 42}}}
    assert await store.get("other") is None


async def test_only_one_holder_and_takeover_after_expiry(redis_prefix):
    client, prefix = redis_prefix
    a = Lease(client, prefix, "support", ttl=0.3, token="a")
    b = Lease(client, prefix, "support", ttl=0.3, token="b")
    assert await a.acquire()
    assert not await b.acquire()
    assert await a.acquire()  # re-entrant for the holder: it extends
    assert await a.held() and not await b.held()
    assert not await b.renew() and not await b.release()  # b cannot touch a's lease
    assert await a.held()
    await asyncio.sleep(0.45)  # a stops renewing, as if it died
    assert await b.acquire()
    assert not await a.renew()  # a learns it lost the lease
    assert not await a.release()  # and its release does not remove b's lease
    assert await b.held()
    assert await b.release()
    assert await client.get(a.key) is None


def token_of(pid: int) -> str:
    """The lease token another process of this host and pid namespace would hold."""
    host, _, suffix, namespace = default_token().split(":")
    return f"{host}:{pid}:{suffix}:{namespace}"


async def test_a_daemon_restarted_here_takes_over_from_its_dead_predecessor(redis_prefix):
    """A SIGKILLed daemon's lease need not be waited out by its successor on the same host;
    a live holder's still is."""
    client, prefix = redis_prefix
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        held_by_dead = Lease(client, prefix, "inbox", ttl=60, token=token_of(dead.pid))
        held_by_live = Lease(client, prefix, "mailbox", ttl=60, token=token_of(alive.pid))
        assert await held_by_dead.acquire() and await held_by_live.acquire()
        assert await Lease(client, prefix, "inbox", ttl=60).acquire()  # at once, not in 60 s
        assert not await held_by_dead.renew()
        assert not await Lease(client, prefix, "mailbox", ttl=60).acquire()
        assert await held_by_live.held()
        # a holder elsewhere (another host) is never taken over before its lease expires
        other = Lease(client, prefix, "x", ttl=60, token=f"elsewhere:{dead.pid}:ab:1")
        assert await other.acquire()
        assert not await Lease(client, prefix, "x", ttl=60).acquire()
    finally:
        alive.kill()
        alive.wait()


class CountingConnector(Connector):
    """A connector whose run counts polls: enough to see who holds the lease."""

    kind = "test"

    def __init__(self, name: str, lease: Lease) -> None:
        super().__init__(name, lease=lease)
        self.polls = 0

    async def run_once(self, sink: Sink) -> float | None:
        self.polls += 1
        return 0.05


async def _nothing(batch):
    return None


async def test_two_instances_one_polls_and_the_other_takes_over(redis_prefix):
    client, prefix = redis_prefix
    first = CountingConnector("support", Lease(client, prefix, "support", ttl=0.6, token="one"))
    second = CountingConnector("support", Lease(client, prefix, "support", ttl=0.6, token="two"))
    t1 = asyncio.create_task(reconnect_loop(first, _nothing))
    assert await eventually(lambda: first.polls > 0, 2)
    t2 = asyncio.create_task(reconnect_loop(second, _nothing))
    await asyncio.sleep(0.8)  # longer than the ttl: renewals keep the first one the holder
    assert first.polls > 5
    assert second.polls == 0 and second.status.state == "standby"
    # The holder dies without releasing: its lease just expires. A cancel releases it
    # gracefully, so the key first goes to a token nobody holds: that release finds nothing
    # of its own, and the standby cannot take the lease before it expires (setting the key
    # after the cancel raced the standby's own acquire).
    await client.set(first.lease.key, "crashed", px=600)
    t1.cancel()
    await asyncio.gather(t1, return_exceptions=True)
    assert await eventually(lambda: second.polls > 0, 1.2)  # within ttl + ttl/4
    assert second.status.state == "running"
    await second.stop()
    await asyncio.wait_for(t2, 2)
    assert second.status.state == "stopped"
    assert await client.get(second.lease.key) is None  # released on a graceful stop


@pytest.mark.parametrize("ttl", [0.0, -1.0])
async def test_lease_rejects_bad_ttl(redis_prefix, ttl):
    client, prefix = redis_prefix
    with pytest.raises(ValueError):
        Lease(client, prefix, "x", ttl=ttl)
