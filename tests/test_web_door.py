"""The web form's door and overload (issue 12): body limit, slow clients, backlog, a full or
missing Redis. A daemon runs in this process on real Redis (the shared one with a key prefix,
or a redis-server of the test's own that it can fill or kill) and is driven over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import redis

from omnidesk.model import Channel, RawPayload
from omnidesk.service import Daemon, DaemonOptions
from tests.services import eventually
from tests.storekit import CONFIG, REDIS_URL

FORM = {"message": "I have a complaint about a shop in Jeddah", "email": "c@example.sa"}


@dataclass
class Door:
    """A running daemon and where its HTTP server listens."""

    daemon: Daemon
    base: str
    drop: Path

    async def post(self, body: bytes | dict[str, str], **headers: str) -> aiohttp.ClientResponse:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        response, _ = await self._request("POST", "/v1/intake/web", data=data, headers=headers)
        return response

    async def health(self) -> tuple[int, dict[str, object]]:
        response, body = await self._request("GET", "/healthz")
        return response.status, json.loads(body)

    async def metrics(self) -> str:
        return (await self._request("GET", "/metrics"))[1].decode()

    async def _request(
        self, method: str, path: str, **kwargs: object
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.base + path, **kwargs) as response,  # type: ignore[arg-type]
        ):
            return response, await response.read()

    async def queue(self, count: int) -> None:
        """Hand `count` forms to the ingest queue as a connector does (the web form itself
        takes its posts in at once), one message each."""
        for i in range(count):
            body = json.dumps({**FORM, "message": f"complaint {i}"}).encode()
            raw = RawPayload(
                channel=Channel.WEB, account="web", payload=body, received_at=datetime.now(UTC)
            )
            await self.daemon.handover([raw])

    def backlog(self) -> int:
        broker = self.daemon.pipeline.broker
        return int(broker.client.hlen(f"{broker.namespace}:ingest.msgs"))

    def quarantined(self) -> int:
        return int(self.daemon.runtime.store.counts()["quarantine"])


def write_config(path: Path, *, redis_url: str, prefix: str, state: Path, service: str) -> None:
    head = (
        f"service:\n  redis_url: {redis_url}\n  key_prefix: {prefix}\n  state_dir: {state}\n"
        + "".join(f"  {line}\n" for line in service.strip().splitlines())
    )
    drop = state.parent / "drop"
    (drop / "new").mkdir(parents=True, exist_ok=True)
    connectors = (
        f"connectors:\n  - {{name: drop, kind: maildir, path: {drop}, poll_interval: 0.1}}\n"
    )
    path.write_text(head + CONFIG.read_text("utf-8") + connectors, "utf-8")


async def open_door(tmp_path: Path, *, redis_url: str, prefix: str, service: str = "") -> Door:
    config = tmp_path / "queue_config.yaml"
    write_config(
        config, redis_url=redis_url, prefix=prefix, state=tmp_path / "state", service=service
    )
    daemon = Daemon(
        DaemonOptions(
            config=str(config), workers=0, http_port=0, drain_timeout=5, key_prefix=prefix
        )
    )
    await daemon.__aenter__()
    return Door(daemon, f"http://127.0.0.1:{daemon.http_port}", tmp_path / "drop")


def probe_every_time(door: Door) -> None:
    """The gate probes Redis on every request instead of at most every 0.5 s, so a test
    sees a change at once rather than sleeping past the gate's cache."""
    assert door.daemon.gate is not None
    door.daemon.gate.ttl = 0


@pytest.fixture
async def door(prefix: str, tmp_path: Path) -> AsyncIterator[Door]:
    door = await open_door(
        tmp_path,
        redis_url=REDIS_URL,
        prefix=prefix,
        service="intake_max_backlog: 3\nintake_retry_after_s: 1\n"
        "http_keepalive_timeout_s: 1\nhttp_body_timeout_s: 1",
    )
    yield door
    await door.daemon.__aexit__(None, None, None)


# ---------------------------------------------------------------- a redis-server of our own


@dataclass
class PrivateRedis:
    """A redis-server on a unix socket that a test may fill up or kill."""

    socket: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary")
    sock = tmp_path / "redis.sock"
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    server = PrivateRedis(sock, process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if server.client().ping():
                break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield server
    server.kill()


# ---------------------------------------------------------------- body size


async def test_an_oversized_body_is_refused_413_and_nothing_is_stored(door: Door) -> None:
    big = json.dumps({**FORM, "message": "x" * (2 << 20)}).encode()  # 2 MiB, over the 1 MiB default
    response = await door.post(big, **{"Content-Type": "application/json"})
    assert response.status == 413
    assert door.backlog() == 0 and door.quarantined() == 0
    assert 'omnidesk_web_rejected_total{reason="too_large"} 1.0' in await door.metrics()


async def test_a_declared_huge_body_is_refused_before_any_of_it_is_read(door: Door) -> None:
    host, port = door.base.removeprefix("http://").split(":")
    reply = await asyncio.to_thread(
        _raw_exchange,
        (host, int(port)),
        b"POST /v1/intake/web HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413")


async def test_a_chunked_body_is_cut_off_at_the_limit(door: Door) -> None:
    host, port = door.base.removeprefix("http://").split(":")
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20))  # 1.25 MiB, no end
    reply = await asyncio.to_thread(
        _raw_exchange,
        (host, int(port)),
        b"POST /v1/intake/web HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
    )
    assert reply.startswith(b"HTTP/1.1 413")
    assert door.backlog() == 0


async def test_a_bad_form_is_answered_400_counted_and_not_stored(door: Door) -> None:
    response = await door.post(b'{"message": 5, "colour": "red"}')
    assert response.status == 400
    assert door.backlog() == 0 and door.quarantined() == 0
    assert 'omnidesk_web_rejected_total{reason="' in await door.metrics()


# ---------------------------------------------------------------- slow clients


async def test_slow_clients_are_dropped_within_seconds(door: Door) -> None:
    host, port = door.base.removeprefix("http://").split(":")
    partial_headers = b"POST /v1/intake/web HTTP/1.1\r\nHost: x\r\nContent-Le"
    partial_body = b"POST /v1/intake/web HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
    idle = b""
    slow = [partial_headers, partial_body, idle] * 40  # 120 slow clients at once
    results = await asyncio.gather(*(_closed_by_server(host, int(port), sent) for sent in slow))
    assert all(results), f"{results.count(False)} of {len(slow)} connections still open"


# ---------------------------------------------------------------- overload


async def test_a_backlog_over_its_bound_answers_503_and_degrades_healthz(door: Door) -> None:
    probe_every_time(door)
    await door.queue(3)  # no workers: these stay in the ingest queue
    refused = await door.post({**FORM, "message": "one too many"})
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
    status, health = await door.health()
    assert status == 200 and health["status"] == "degraded" and health["degraded"] == ["backlog"]
    assert health["ingest_backlog"] == 3
    metrics = await door.metrics()
    assert 'omnidesk_intake_refused_total{reason="backlog"} 1.0' in metrics
    assert "omnidesk_intake_backlog 3.0" in metrics


async def test_connectors_hold_back_under_backlog_and_lose_nothing(door: Door) -> None:
    probe_every_time(door)
    await door.queue(3)
    new = door.drop / "new"
    for i in range(4):
        (new / f"d{i}.web.json").write_text(json.dumps({**FORM, "message": f"drop {i}"}))
    await asyncio.sleep(1.5)  # the drop folder is polled every 0.1 s but waits for Retry-After
    assert len(list(new.iterdir())) == 4, "files were taken while intake was overloaded"
    (drop,) = door.daemon.connectors
    assert drop.status.state == "backoff" and "backlog" in (drop.status.last_error or "")
    worker = door.daemon.pipeline.start_worker(1)  # the backlog drains, the gate opens
    try:
        store = door.daemon.runtime.store
        assert await eventually(lambda: store.ticket_count() == 7, timeout=20)
        assert not list(new.iterdir())
    finally:
        await asyncio.to_thread(worker.stop, 5000)


async def test_redis_out_of_memory_answers_503_not_500(
    private_redis: PrivateRedis, prefix: str, tmp_path: Path
) -> None:
    door = await open_door(tmp_path, redis_url=private_redis.url, prefix=prefix)
    try:
        assert (await door.post(FORM)).status == 201
        client = private_redis.client()
        for i in range(2048):  # 2 MiB of ballast, then a limit below it: writes now fail
            client.set(f"ballast:{i}", "x" * 1024)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - 256 * 1024)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.set("one:more", "x")
        probe_every_time(door)
        refused = await door.post({**FORM, "message": "while redis is full"})
        assert refused.status == 503 and int(refused.headers["Retry-After"]) > 0
        status, health = await door.health()
        assert status == 503 and health["degraded"] == ["redis_oom"]
    finally:
        await door.daemon.__aexit__(None, None, None)


async def test_a_full_redis_met_at_hand_over_answers_503(
    private_redis: PrivateRedis, prefix: str, tmp_path: Path
) -> None:
    door = await open_door(tmp_path, redis_url=private_redis.url, prefix=prefix)
    try:
        assert (await door.post(FORM)).status == 201  # the gate has probed: all well
        client = private_redis.client()
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)  # every write now fails, before the gate looks again
        refused = await door.post({**FORM, "message": "while redis is full"})
        assert refused.status == 503 and refused.headers["Retry-After"]
        metrics = await door.metrics()  # the refusal is counted under the reason it had then
        assert 'omnidesk_intake_refused_total{reason="redis_oom"} 1.0' in metrics
        assert 'reason="redis_down"' not in metrics
    finally:
        private_redis.client().config_set("maxmemory", 0)
        await door.daemon.__aexit__(None, None, None)


async def test_a_redis_that_refuses_info_does_not_close_intake(
    private_redis: PrivateRedis, prefix: str, tmp_path: Path
) -> None:
    """An ACL without INFO leaves memory unknown; it is not an outage to answer 503 for."""
    private_redis.client().acl_setuser(
        "intake", enabled=True, passwords=["+secret"], keys=["*"], channels=["*"],
        commands=["+@all", "-info"],
    )  # fmt: skip
    url = f"unix://intake:secret@{private_redis.socket}"
    door = await open_door(tmp_path, redis_url=url, prefix=prefix)
    try:
        assert (await door.post(FORM)).status == 201
        probe_every_time(door)  # the next request probes again
        assert (await door.post({**FORM, "message": "again"})).status == 201
        status, health = await door.health()
        assert status == 200 and health["degraded"] == [] and health["ingest_backlog"] is not None
    finally:
        await door.daemon.__aexit__(None, None, None)


async def test_a_redis_that_may_evict_is_reported_once_and_in_healthz(
    private_redis: PrivateRedis, prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Eviction at maxmemory can drop broker messages and tickets without an error."""
    private_redis.client().config_set("maxmemory-policy", "allkeys-lru")
    door = await open_door(tmp_path, redis_url=private_redis.url, prefix=prefix)
    try:
        assert (await door.post(FORM)).status == 201  # degraded, not refused
        probe_every_time(door)
        status, health = await door.health()
        assert status == 200 and health["status"] == "degraded"
        assert health["degraded"] == ["redis_evicts"]
        warnings = [r for r in caplog.records if "noeviction" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    finally:
        await door.daemon.__aexit__(None, None, None)


async def test_redis_down_answers_503_and_healthz_says_why(
    private_redis: PrivateRedis, prefix: str, tmp_path: Path
) -> None:
    door = await open_door(tmp_path, redis_url=private_redis.url, prefix=prefix)
    try:
        assert (await door.post(FORM)).status == 201
        private_redis.kill()
        probe_every_time(door)
        refused = await door.post({**FORM, "message": "while redis is down"})
        assert refused.status == 503 and refused.headers["Retry-After"]
        status, health = await door.health()
        assert status == 503 and health["degraded"] == ["redis_down"]
    finally:
        await door.daemon.__aexit__(None, None, None)


# ---------------------------------------------------------------- raw sockets


def _raw_exchange(address: tuple[str, int], request: bytes, timeout: float = 10.0) -> bytes:
    """Send `request` (which may never end) and return what the server answers first."""
    with socket.create_connection(address, timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server answered and closed while we sent
            sock.sendall(request)
        try:
            return sock.recv(4096)
        except ConnectionResetError:
            return b""


async def _closed_by_server(host: str, port: int, sent: bytes, within: float = 10.0) -> bool:
    """True when the server closes a connection that sent `sent` and then went quiet."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(sent)
        await writer.drain()
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    finally:
        writer.close()
