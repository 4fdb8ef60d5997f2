"""A tiny IMAP server on loopback for what Dovecot will not do: answer FETCH with the UID
after the message body (`* 1 FETCH (BODY[] {n} ... UID 5)`), as RFC 3501 allows, or with
no UID at all. It speaks just what `ImapSession` uses in poll mode: CAPABILITY, LOGIN,
SELECT, UID SEARCH, UID FETCH, UID STORE, NOOP and LOGOUT."""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Mailbox:
    """The stand-in's one folder: (uid, raw) pairs, and how FETCH answers are shaped."""

    messages: list[tuple[int, bytes]] = field(default_factory=list)
    uid_last: bool = True  # the UID after the body literal, not before it
    without_uid: set[int] = field(default_factory=set)  # UIDs answered with no UID item
    internal_date: str = "04-Dec-2026 09:00:00 +0300"
    seen: set[int] = field(default_factory=set)
    commands: list[str] = field(default_factory=list)


def _uids(spec: str, known: list[tuple[int, bytes]]) -> set[int]:
    """The known UIDs a sequence set such as `5,7:9` or `6:*` names."""
    found: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition(":")
        top = 10**9 if high == "*" else int(high or low)
        found.update(uid for uid, _ in known if int(low) <= uid <= top)
    return found


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def send(self, line: bytes) -> None:
        self.wfile.write(line + b"\r\n")

    def handle(self) -> None:
        box = self.server.mailbox
        self.send(b"* OK stand-in ready")
        while line := self.rfile.readline():
            tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
            command = rest.upper()
            box.commands.append(rest)
            if command.startswith("CAPABILITY"):
                self.send(b"* CAPABILITY IMAP4rev1")
            elif command.startswith("SELECT"):
                self.send(f"* {len(box.messages)} EXISTS".encode())
                self.send(b"* OK [UIDVALIDITY 42] UIDs valid")
            elif command.startswith("UID SEARCH"):
                wanted = sorted(_uids(rest.split()[-1], box.messages))
                self.send(b"* SEARCH " + " ".join(str(u) for u in wanted).encode())
            elif command.startswith("UID FETCH"):
                self.fetch(box, _uids(rest.split()[2], box.messages))
            elif command.startswith("UID STORE"):
                box.seen |= _uids(rest.split()[2], box.messages)
            elif command.startswith("LOGOUT"):
                self.send(b"* BYE bye")
                self.send(f"{tag} OK done".encode())
                return
            self.send(f"{tag} OK done".encode())

    def fetch(self, box: Mailbox, wanted: set[int]) -> None:
        date = f'INTERNALDATE "{box.internal_date}"'.encode()
        for seq, (uid, raw) in enumerate(box.messages, 1):
            if uid not in wanted:
                continue
            literal = b"BODY[] {%d}" % len(raw)
            uid_item = b"" if uid in box.without_uid else b"UID %d" % uid
            if box.uid_last:
                head, tail = b"%s %s" % (date, literal), b" %s)" % uid_item
            else:
                head, tail = b"%s %s %s" % (uid_item, date, literal), b")"
            self.wfile.write(b"* %d FETCH (%s\r\n" % (seq, head.strip()) + raw)
            self.send(re.sub(rb"\s+\)", b")", tail))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mailbox: Mailbox) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mailbox = mailbox


@contextmanager
def imap_standin(mailbox: Mailbox) -> Iterator[int]:
    """Serve `mailbox` on a free loopback port (yielded) until the block ends."""
    server = _Server(mailbox)
    thread = threading.Thread(target=server.serve_forever, name="imap-standin", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
