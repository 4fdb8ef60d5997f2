"""A blocking IMAP session on imaplib2, with its errors converted to ours in one place.

Every method here blocks; `ImapConnector` calls them through `asyncio.to_thread`.
Nothing here parses mail beyond what IMAP needs: UIDs, UIDVALIDITY and raw bytes.
"""

from __future__ import annotations

import base64
import logging
import math
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import imaplib2

from connectors.email.config import EmailAccount, tls_context
from connectors.email.fetch import Fetched, parse_fetch
from omnidesk.errors import AuthError, PermanentError, TransientError

log = logging.getLogger("omnidesk.connectors.imap")

_IMAP = imaplib2.IMAP4


_LIB_LOG = logging.getLogger("omnidesk.connectors.imaplib2")


class _Plain(imaplib2.IMAP4):
    """imaplib2 with a connect timeout, STARTTLS that verifies the server (its own wrapper
    does not check certificates unless given a CA file, nor host names), and TLS reads and
    writes that take turns.

    imaplib2 reads in one thread and writes in another, and a blocking read waits inside
    OpenSSL. An SSL object is not safe for that: over TLS 1.3, where session tickets follow
    the handshake, 1 to 13 % of STARTTLS connects here lost the reply to their first
    command. On a TLS socket every OpenSSL call holds `_tls_io`, and no call waits for the
    network inside OpenSSL: the socket is non-blocking, and the wait happens outside the lock."""

    sock: socket.socket  # set by imaplib2's open(), from our open_socket()

    def __init__(self, *args: Any, connect_timeout: float, tls: ssl.SSLContext, **kw: Any):
        self._connect_timeout = connect_timeout
        self._tls = tls
        self._tls_io = threading.Lock()
        super().__init__(*args, **kw)

    def _mesg(self, s: str, tn: str | None = None, secs: float | None = None) -> None:
        """imaplib2 writes its own diagnostics raw to stderr, past our JSON log format; they
        go through our logger instead. "bad arg" means we called it wrongly: a warning."""
        level = logging.WARNING if str(s).startswith("bad arg") else logging.DEBUG
        _LIB_LOG.log(level, "imaplib2 %s: %s", tn or threading.current_thread().name, s)

    def open_socket(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self._connect_timeout)
        sock.settimeout(None)  # imaplib2's reader thread polls; it wants a blocking socket
        return sock

    def ssl_wrap_socket(self) -> None:
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self.host)
        self.sock.setblocking(False)  # the handshake is done; from here on see read()/send()
        self.read_fd = self.sock.fileno()

    def read(self, size: int) -> bytes:
        if not isinstance(self.sock, ssl.SSLSocket):
            return super().read(size)
        while not self.Terminate:
            with self._tls_io:
                try:
                    return self.sock.recv(size)
                except ssl.SSLWantReadError:  # a record not yet whole, or only a session ticket
                    readable = True
                except ssl.SSLWantWriteError:
                    readable = False
            _wait_for(self.sock, readable)
        return b""  # the connection is closing: imaplib2's reader sees b"" and stops

    def send(self, data: bytes) -> None:
        if not isinstance(self.sock, ssl.SSLSocket):
            return super().send(data)
        rest = memoryview(data)
        while rest:
            if self.Terminate:
                raise OSError("IMAP connection closed while sending")
            with self._tls_io:
                try:
                    rest = rest[self.sock.send(rest) :]
                    continue
                except ssl.SSLWantWriteError:
                    readable = False
                except ssl.SSLWantReadError:
                    readable = True
            _wait_for(self.sock, readable)
        return None


class _Tls(_Plain, imaplib2.IMAP4_SSL):
    pass


def _wait_for(sock: socket.socket, readable: bool) -> None:
    """Until the socket is readable (or writable), or a second has passed: the caller then
    checks whether the connection is closing and tries again."""
    poller = select.poll()
    poller.register(sock, select.POLLIN if readable else select.POLLOUT)
    poller.poll(1000)


@contextmanager
def imap_errors(account: EmailAccount, what: str) -> Iterator[None]:
    """Library and socket errors become Transient/Permanent/Auth errors naming the field."""
    where = f"{account.host}:{account.port}"
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise PermanentError(f"security: TLS certificate of {where} not trusted: {exc}") from exc
    except ssl.SSLError as exc:
        raise TransientError(f"security: TLS with {where} failed while {what}: {exc}") from exc
    except socket.gaierror as exc:
        raise TransientError(f"host: cannot resolve {account.host!r}: {exc}") from exc
    except (ConnectionRefusedError, TimeoutError) as exc:
        raise TransientError(f"host: cannot connect to {where}: {exc}") from exc
    except OSError as exc:
        raise TransientError(f"connection to {where} failed while {what}: {exc}") from exc
    except _IMAP.abort as exc:  # the server hung up or stopped answering: reconnect later
        raise TransientError(f"IMAP connection to {where} lost while {what}: {exc}") from exc
    except _IMAP.error as exc:
        raise PermanentError(f"IMAP error from {where} while {what}: {exc}") from exc


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class ImapSession:
    """One logged-in connection to one account."""

    def __init__(self, account: EmailAccount, auth: tuple[str, str]) -> None:
        self.account = account
        self._auth = auth
        self.conn: imaplib2.IMAP4 | None = None
        self.selected: str | None = None
        self._wake = threading.Event()  # set by interrupt(): no more waiting in IDLE

    # ------------------------------------------------------------ connect / login

    def connect(self) -> None:
        a = self.account
        tls = tls_context(a.tls_verify, a.ca_file)
        with imap_errors(a, "connecting"):
            cls = _Tls if a.security == "tls" else _Plain
            self.conn = cls(
                a.host,
                a.port,
                connect_timeout=a.timeouts.connect,
                tls=tls,
                timeout=a.timeouts.command,
                identifier=f"imap-{a.name}",
            )
            if a.security == "starttls":
                try:
                    self.conn.starttls()
                    if not isinstance(self.conn.sock, ssl.SSLSocket):  # never log in in clear
                        raise PermanentError(f"security: STARTTLS with {a.host} gave no TLS")
                except BaseException:
                    self.close()
                    raise
        self.login()

    def login(self) -> None:
        a, conn = self.account, self._require()
        kind, secret = self._auth
        try:
            with imap_errors(a, "logging in"):
                try:
                    if kind == "xoauth2":
                        token = f"user={a.username}\x01auth=Bearer {secret}\x01\x01"
                        conn.authenticate("XOAUTH2", lambda _challenge: token)
                    else:
                        conn.login(a.username, secret)
                except _IMAP.abort:
                    raise
                except _IMAP.error as exc:
                    reason = _text(exc.args[0] if exc.args else exc)
                    if "UNAVAILABLE" in reason.upper():
                        raise TransientError(f"login to {a.host} unavailable: {reason}") from exc
                    field = "oauth2_token_env" if kind == "xoauth2" else "password_env"
                    raise AuthError(
                        f"username/{field}: {a.host} refused the credentials of "
                        f"{a.username!r}: {reason}"
                    ) from exc
        except BaseException:
            self.close()
            raise

    @property
    def capabilities(self) -> tuple[str, ...]:
        return tuple(_text(c).upper() for c in getattr(self._require(), "capabilities", ()))

    def _require(self) -> imaplib2.IMAP4:
        if self.conn is None:
            raise TransientError("IMAP session is not connected")
        return self.conn

    # ------------------------------------------------------------ folders

    def select(self, folder: str) -> int:
        """SELECT (read-write: we set \\Seen or move); returns the folder's UIDVALIDITY."""
        conn = self._require()
        with imap_errors(self.account, f"selecting {folder!r}"):
            typ, data = conn.select(_quote(folder))
            if typ != "OK":
                self.selected = None
                raise PermanentError(
                    f"folders: {folder!r} cannot be selected on {self.account.host}: "
                    f"{_text(data[-1] if data else '')}"
                )
            _, validity = conn.response("UIDVALIDITY")
        self.selected = folder
        try:
            return int(validity[-1])
        except (TypeError, ValueError, IndexError) as exc:
            raise PermanentError(f"{self.account.host} sent no UIDVALIDITY for {folder!r}") from exc

    def exists(self, folder: str) -> bool:
        conn = self._require()
        with imap_errors(self.account, f"looking up {folder!r}"):
            typ, _ = conn.status(_quote(folder), "(UIDVALIDITY)")
        return typ == "OK"

    def create(self, folder: str) -> None:
        with imap_errors(self.account, f"creating {folder!r}"):
            self._require().create(_quote(folder))  # NO when it exists already: fine

    # ------------------------------------------------------------ messages

    def uids_after(self, last: int) -> list[int]:
        """UIDs greater than `last`, ascending. `UID SEARCH UID n:*` also returns the
        highest message when n is past it (`*` is the last UID), so filter again."""
        conn = self._require()
        with imap_errors(self.account, "searching"):
            typ, data = conn.uid("SEARCH", "UID", f"{last + 1}:*")
        if typ != "OK":
            raise TransientError(f"UID SEARCH failed: {_text(data)}")
        found: set[int] = set()
        for chunk in data:
            if chunk:
                found.update(int(n) for n in _text(chunk).split() if n.isdigit())
        return sorted(uid for uid in found if uid > last)

    def fetch(self, uids: list[int]) -> dict[int, Fetched]:
        """Raw RFC 822 bytes and INTERNALDATE by UID, with BODY.PEEK[] so fetching does not
        set \\Seen. The items may come in any order. A message expunged meanwhile is
        absent; whatever could not be read is logged, never skipped without a word."""
        conn = self._require()
        with imap_errors(self.account, "fetching"):
            typ, data = conn.uid("FETCH", _uid_set(uids), "(UID INTERNALDATE BODY.PEEK[])")
        if typ != "OK":
            raise TransientError(f"UID FETCH failed: {_text(data)}")
        answer = parse_fetch(data)
        where = f"{self.account.name}: {self.selected!r}"
        for problem in answer.problems:
            log.warning("%s: %s", where, problem)
        missing = sorted(set(uids) - set(answer.messages))
        if missing:
            log.info("%s: UIDs %s not in the FETCH answer (expunged meanwhile?)", where, missing)
        return answer.messages

    def mark_seen(self, uids: list[int]) -> None:
        with imap_errors(self.account, "setting \\Seen"):
            typ, data = self._require().uid("STORE", _uid_set(uids), "+FLAGS.SILENT", r"(\Seen)")
        if typ != "OK":
            raise TransientError(f"UID STORE \\Seen failed: {_text(data)}")

    def move(self, uids: list[int], folder: str) -> None:
        """UID MOVE where offered; else COPY, \\Deleted and (UID) EXPUNGE."""
        conn, caps, uid_set = self._require(), self.capabilities, _uid_set(uids)
        with imap_errors(self.account, f"moving to {folder!r}"):
            if "MOVE" in caps:
                typ, data = conn.uid("MOVE", uid_set, _quote(folder))
            else:
                typ, data = conn.uid("COPY", uid_set, _quote(folder))
                if typ == "OK":
                    conn.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
                    if "UIDPLUS" in caps:
                        conn.uid("EXPUNGE", uid_set)
                    else:
                        conn.expunge()
        if typ != "OK":
            raise PermanentError(f"after: cannot move to {folder!r}: {_text(data)}")

    # ------------------------------------------------------------ idle / close

    def idle(self, timeout: float) -> None:
        """Block until the server reports a change in the selected folder, `timeout`
        passes, or `interrupt` is called (before or during the wait).

        IDLE is issued with a callback: a synchronous IDLE would hold imaplib2's state
        lock, and then a NOOP from another thread could not end it. imaplib2 takes only an
        int timeout: given a float it silently waits its default 29 minutes instead."""
        timeout = idle_seconds(timeout)
        conn, ended = self._require(), threading.Event()
        outcome: list[Any] = []

        def done(result: Any) -> None:
            outcome.append(result)
            ended.set()

        if self._wake.is_set():
            return
        deadline = time.monotonic() + timeout + self.account.timeouts.command
        with imap_errors(self.account, "idling"):
            conn.idle(timeout=timeout, callback=done)
            poked = False
            while not ended.wait(0.25):
                if self._wake.is_set() and not poked:
                    conn.noop(callback=lambda _result: None)  # any command ends IDLE
                    poked = True
                if time.monotonic() > deadline:
                    raise _IMAP.abort(f"IDLE did not end after {timeout:.0f}s")
            _response, _arg, error = outcome[0]
            if error is not None:
                kind, reason = error
                raise kind(reason)

    def interrupt(self) -> None:
        """From another thread: end a running IDLE, or skip the next one (stop)."""
        self._wake.set()

    def close(self) -> None:
        conn, self.conn, self.selected = self.conn, None, None
        if conn is None:
            return
        try:
            conn.logout()
        except Exception as exc:  # logging out of a dead connection: its threads end anyway
            log.debug("IMAP logout: %s", exc)


def idle_seconds(timeout: float) -> int:
    """An IDLE timeout as imaplib2 accepts it: whole seconds, at least one, rounded up so
    that a 0.2 s poll interval waits 1 s, not a busy loop."""
    return max(1, math.ceil(timeout))


def _uid_set(uids: list[int]) -> str:
    return ",".join(str(u) for u in sorted(uids))


def _quote(folder: str) -> str:
    """A mailbox name as an IMAP quoted string, in modified UTF-7 (Arabic folder names)."""
    escaped = encode_mailbox(folder).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def encode_mailbox(name: str) -> str:
    """RFC 3501 5.1.3 modified UTF-7: printable ASCII as is ("&" as "&-"), runs of other
    characters as "&" + base64 of their UTF-16BE with "," for "/" + "-"."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            data = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)
