"""omnidesk.redispack packs every command to the very bytes redis-py's own packer does, and
fails as it does: only faster (hiredis encodes the arguments, not Python)."""

from __future__ import annotations

import enum
from typing import Any

import pytest
import redis
from redis.exceptions import DataError

from omnidesk.redisbroker import redis_broker
from omnidesk.redispack import PACKER
from omnidesk.store import Store


class Kind(enum.StrEnum):
    ACK = "acknowledged"


class Level(enum.IntEnum):
    HIGH = 3


def redis_py_packer() -> Any:
    """What a connection packs with when nobody names a `command_packer`."""
    return redis.Connection()._command_packer


COMMANDS: list[tuple[Any, ...]] = [
    ("HSET", "od:msg:M-1", "text", "أرغب في تجديد السجل التجاري، please", "n", 3),
    ("ZADD", "od:due", 1796582422.198854, "OD-2026-000001", float("inf"), "x", -0.0, "y"),
    ("SET", b"raw:\x00\xff", b"\x89PNG\r\n", "ex", 2**70, 1e-7, 1 / 3),
    ("CLIENT SETNAME", "omnidesk-worker"),
    (b"SCRIPT LOAD", "return 1"),
    ("XADD", "od:events", "*", "type", Kind.ACK, "priority", Level.HIGH),
    ("SET", "k", memoryview(b"view"), bytearray(b"array")),
    ("SET", "k", memoryview(b"a-c-e-")[::2]),  # strided: hiredis alone would send "a-c"
    ("SET", "k", "x" * 10_000),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_same_bytes_as_redis_py(command: tuple[Any, ...]) -> None:
    def packed(packer: Any) -> bytes:
        return b"".join(bytes(chunk) for chunk in packer.pack(*command))

    assert packed(PACKER) == packed(redis_py_packer())


@pytest.mark.parametrize("bad", [None, True, object()])
def test_the_same_errors_as_redis_py(bad: Any) -> None:
    with pytest.raises(DataError):
        redis_py_packer().pack("SET", "k", bad)
    with pytest.raises(DataError):
        PACKER.pack("SET", "k", bad)


def test_a_lone_surrogate_is_refused_as_redis_py_refuses_it() -> None:
    with pytest.raises(UnicodeEncodeError):
        redis_py_packer().pack("SET", "k", "\udc80")
    with pytest.raises(UnicodeEncodeError):
        PACKER.pack("SET", "k", "\udc80")


def test_the_stores_clients_pack_with_it() -> None:
    store = Store.from_url("redis://127.0.0.1:6379/0", "od-pack")
    assert store.r.connection_pool.connection_kwargs["command_packer"] is PACKER
    binary = store.binary().connection_pool.connection_kwargs
    assert binary["command_packer"] is PACKER


def test_the_brokers_client_packs_with_it() -> None:
    broker = redis_broker("redis://127.0.0.1:6379/0", namespace="od-pack")
    try:
        assert broker.client.connection_pool.connection_kwargs["command_packer"] is PACKER
    finally:
        broker.close()
