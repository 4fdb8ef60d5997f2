"""The email connector: IMAP in (IDLE or polling), SMTP out, for one account.

Per folder the cursor is the last handed-over UID with its UIDVALIDITY, kept in the
CursorStore. Each run fetches UIDs above the cursor with BODY.PEEK[], hands them to
the sink in batches, and only then advances the cursor and marks them \\Seen (or
moves them). If a folder's UIDVALIDITY changes, the UIDs mean nothing any more: the
folder is read again from the start. That re-delivers messages already handed over,
which is harmless because intake dedupes on (channel, Message-ID).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from typing import Any, ClassVar

from connectors.base import Connector, Sink
from connectors.email.config import EmailAccount
from connectors.email.imapsession import ImapSession
from connectors.email.smtp import SmtpSender
from connectors.state import CursorStore, Lease
from omnidesk.errors import PermanentError
from omnidesk.model import Channel, Outbound, RawPayload, Receipt, utcnow

log = logging.getLogger("omnidesk.connectors.imap")


class ImapConnector(Connector):
    kind: ClassVar[str] = "email"
    config_model: ClassVar[type[EmailAccount]] = EmailAccount  # what connectors.catalog checks

    def __init__(
        self, account: EmailAccount, cursors: CursorStore | None = None, lease: Lease | None = None
    ) -> None:
        super().__init__(account.name, lease=lease)
        self.account = account
        self.cursors = cursors
        self.sender = SmtpSender(account) if account.smtp else None
        self._auth: tuple[str, str] | None = None
        self._session: ImapSession | None = None
        self._idling = False

    # ------------------------------------------------------------ lifecycle

    async def initialize(self) -> None:
        """Read the secrets now, so a missing variable stops the start-up with its name."""
        self._auth = self.account.credentials()
        if self.sender is not None:
            self.sender.initialize()

    async def stop(self) -> None:
        await super().stop()
        session = self._session
        if session is not None:
            session.interrupt()  # ends a running IDLE, or keeps the next one from starting

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await asyncio.to_thread(session.close)

    # ------------------------------------------------------------ receiving

    async def run_once(self, sink: Sink) -> float | None:
        try:
            session = await self._connected()
            _handled, capped = await self._fetch_folders(session, sink)
            if capped or self.stopping:
                return 0.0  # more is waiting: the next run starts at once
            if self._use_idle(session):
                await self._idle(session)
                return None
            return self.account.poll_interval
        except BaseException:  # cancelled, lost, refused or a bug: the session state is unknown
            self._abandon()
            raise

    async def _connected(self) -> ImapSession:
        if self._session is None:
            if self._auth is None:
                await self.initialize()
            assert self._auth is not None
            session = ImapSession(self.account, self._auth)
            await asyncio.to_thread(session.connect)
            self._session = session
            if self.account.move_to:
                await asyncio.to_thread(session.create, self.account.move_to)
        return self._session

    def _use_idle(self, session: ImapSession) -> bool:
        mode = self.account.mode
        has_idle = "IDLE" in session.capabilities
        if mode == "idle" and not has_idle:
            log.warning("%s: server has no IDLE; polling instead", self.name)
        return mode != "poll" and has_idle

    async def _fetch_folders(self, session: ImapSession, sink: Sink) -> tuple[int, bool]:
        """One pass over the folders, the IDLE folder (the first) last, so that it is
        selected when IDLE starts. Returns (messages handed over, cap reached)."""
        if self.cursors is None:
            raise PermanentError(f"connector {self.name}: no cursor store to receive with")
        cursor: dict[str, Any] = await self.cursors.get(self.name) or {}
        folders_state: dict[str, dict[str, int]] = cursor.setdefault("folders", {})
        folders = [*self.account.folders[1:], self.account.folders[0]]
        remaining = self.account.max_per_run
        for folder in folders:
            if remaining <= 0 or self.stopping:
                break
            remaining -= await self._fetch_folder(
                session, sink, cursor, folders_state, folder, remaining
            )
        self.status.last_fetch = utcnow()
        return self.account.max_per_run - remaining, remaining <= 0

    async def _fetch_folder(
        self,
        session: ImapSession,
        sink: Sink,
        cursor: dict[str, Any],
        folders_state: dict[str, dict[str, int]],
        folder: str,
        limit: int,
    ) -> int:
        validity = await asyncio.to_thread(session.select, folder)
        state = folders_state.get(folder)
        if state is None or state.get("uidvalidity") != validity:
            if state is not None:
                log.warning(
                    "%s: UIDVALIDITY of %r changed (%s -> %s); reading it again from the start",
                    self.name, folder, state.get("uidvalidity"), validity,
                )  # fmt: skip
            state = folders_state[folder] = {"uidvalidity": validity, "uid": 0}
        cursors = self.cursors
        assert cursors is not None  # _fetch_folders refused to start without one
        done = 0
        while done < limit and not self.stopping:
            uids = await asyncio.to_thread(session.uids_after, state["uid"])
            if not uids:
                break
            todo, size = uids[: limit - done], self.account.batch_size
            for batch in (todo[i : i + size] for i in range(0, len(todo), size)):
                await self._hand_over(session, sink, folder, batch)
                state["uid"] = max(batch)
                await cursors.set(self.name, cursor)
                await self._after(session, batch)
                done += len(batch)
                if self.stopping:
                    break
        return done

    async def _hand_over(
        self, session: ImapSession, sink: Sink, folder: str, batch: list[int]
    ) -> None:
        fetched = await asyncio.to_thread(session.fetch, batch)
        self.status.received += len(fetched)
        now = utcnow()
        payloads = [
            RawPayload(
                channel=Channel.EMAIL,
                account=self.name,
                payload=fetched[uid].body,
                received_at=received_time(fetched[uid].internal_date, now),
                source=f"imap:{folder}:{uid}",
            )
            for uid in batch
            if uid in fetched
        ]
        if payloads:
            await sink(payloads)  # raises when the hand-over failed: the cursor stays put
            self.status.handed_over += len(payloads)

    async def _after(self, session: ImapSession, batch: list[int]) -> None:
        """Acknowledge at the source, only after the hand-over."""
        target = self.account.move_to
        if target:
            await asyncio.to_thread(session.move, batch, target)
        else:
            await asyncio.to_thread(session.mark_seen, batch)

    async def _idle(self, session: ImapSession) -> None:
        timeout = self.account.timeouts.idle
        if len(self.account.folders) > 1:  # IDLE watches one folder; poll the others meanwhile
            timeout = min(timeout, self.account.poll_interval)
        self._idling = True
        try:
            await asyncio.to_thread(session.idle, timeout)
        finally:
            self._idling = False

    def _abandon(self) -> None:
        """Drop the session without waiting (its state is unknown, or we were cancelled
        in the middle of a blocking call); the next run reconnects."""
        session, self._session = self._session, None
        if session is not None:
            threading.Thread(
                target=session.close, name=f"imap-close-{self.name}", daemon=True
            ).start()

    # ------------------------------------------------------------ sending and checking

    async def send(self, reply: Outbound) -> Receipt:
        if self.sender is None:
            raise PermanentError(f"connectors.{self.name}.smtp: no SMTP server configured")
        return await self.sender.send(reply)

    async def check(self) -> None:
        """Connect once: bad host, bad credentials and missing folders raise typed errors
        that name the field. The SMTP side is checked too when configured."""
        auth = self.account.credentials()
        session = ImapSession(self.account, auth)
        try:
            await asyncio.to_thread(session.connect)
            for folder in self.account.folders:
                if not await asyncio.to_thread(session.exists, folder):
                    raise PermanentError(
                        f"folders: {folder!r} does not exist on {self.account.host}"
                    )
        finally:
            await asyncio.to_thread(session.close)
        if self.sender is not None:
            self.sender.initialize()
            await self.sender.check()


def received_time(internal_date: datetime | None, now: datetime) -> datetime:
    """When the mail reached our mailbox: the server's INTERNALDATE (its delivery time, which
    the sender cannot set, unlike the Date: header), so a connector that was down does not
    delay it; never later than now (a server clock ahead), and now when there is none."""
    if internal_date is None or internal_date > now:
        return now
    return internal_date
