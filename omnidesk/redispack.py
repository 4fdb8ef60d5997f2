"""Redis commands packed in C. redis-py's hiredis packer encodes each argument in Python
before handing the command to hiredis (23 µs for a 12-field HSET on these machines, 2.4 µs
for hiredis alone), and a ticket costs some forty commands from Python. hiredis encodes
str (UTF-8, strict; a StrEnum as its value), bytes, bytearray, int and float to the very
bytes redis-py does; a command with anything else (an IntEnum, a bool, None) takes
redis-py's Python packer, with its conversions and errors, and so does one with a
memoryview (hiredis would copy a strided one's bytes wrongly).
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis._parsers.encoders import Encoder
from redis.connection import PythonRespSerializer

# redis-py's default: above it, a long value goes to the socket as its own chunk
BUFFER_CUTOFF = 6000


class CommandPacker:
    """A connection's `command_packer` (a redis-py option): `pack` returns the command's
    bytes for the socket, as redis-py's serializers do."""

    def __init__(self) -> None:
        encoder = Encoder(encoding="utf-8", encoding_errors="strict", decode_responses=False)
        self._fallback = PythonRespSerializer(BUFFER_CUTOFF, encoder.encode)

    def pack(self, *args: Any) -> list[bytes]:
        first = args[0]
        # a command of several words ("CLIENT SETNAME") is sent as its words, as redis-py does
        if isinstance(first, str | bytes) and len(words := first.split()) > 1:
            args = (*words, *args[1:])
        if memoryview in map(type, args):  # a scan in C: no Python loop per argument
            return list(self._fallback.pack(*args))
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            return list(self._fallback.pack(*args))


PACKER = CommandPacker()
