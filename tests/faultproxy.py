"""A TCP proxy in front of a real Redis that loses replies or refuses connections on cue, for
faults Redis itself cannot be made to show on time: a command that ran but whose reply never
arrived, and an outage where nothing is even sent.

    with FaultProxy(6379) as proxy:
        client = redis.Redis(port=proxy.port)
        proxy.lose_next_reply()   # the next command runs in Redis; its connection then drops
        proxy.refuse()            # connections are refused (the command is never sent)
        proxy.stall()             # replies are held back (a Redis that hangs) until release()
        proxy.accept()            # and taken again
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

from tests.services import free_port


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._lose_reply = threading.Event()
        self._stalled = threading.Event()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def lose_next_reply(self) -> None:
        """The next reply from Redis is dropped and its client connection closed."""
        self._lose_reply.set()

    def stall(self) -> None:
        """Hold every reply back, as a Redis that hangs without closing would."""
        self._stalled.set()

    def release(self) -> None:
        self._stalled.clear()

    def accept(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._serve, args=(listener,), daemon=True).start()

    def refuse(self) -> None:
        """Stop listening and drop every open connection: connects are now refused."""
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() that close() would not
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while data := source.recv(65536):
                if replies and self._lose_reply.is_set():
                    self._lose_reply.clear()
                    break
                while replies and self._stalled.is_set():
                    time.sleep(0.01)
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> FaultProxy:
        self.accept()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.refuse()
