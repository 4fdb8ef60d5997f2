"""The agents' side of the daemon in one object: roster, assignment, desk, tokens, surveys.

Built from a store, a way to read the current config (so SIGHUP reloads apply), and the
pipeline's `send_reply`. The HTTP API, the console, the CLI and the tests all use this.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omnidesk.agents.assign import Assigner
from omnidesk.agents.attachments import (
    AttachmentFiles,
    AttachmentTooLarge,
    AttachmentUnavailable,
    ChannelUnavailable,
    Downloader,
    Served,
    archived,
    listing,
    parse_id,
    served,
    unavailable_reason,
    uploaded_kept,
)
from omnidesk.agents.csat import Surveys
from omnidesk.agents.desk import Desk, NotFound, SendReply
from omnidesk.agents.directory_roster import DirectoryRoster
from omnidesk.agents.roster import NoSuchAgent, Roster
from omnidesk.agents.sessions import Sessions
from omnidesk.agents.tokens import Tokens
from omnidesk.archive import Archive
from omnidesk.config import AgentConfig, QueueConfigFile
from omnidesk.errors import AuthError, PermanentError, TooLarge, TransientError
from omnidesk.model import Channel, Message, Ticket
from omnidesk.sla.protocol import SlaEngine
from omnidesk.store import Store

RISK_SCAN = 500  # waiting tickets per priority band looked at for SLA risk


@dataclass
class AgentService:
    store: Store
    config: Callable[[], QueueConfigFile]
    send_reply: SendReply
    sla: SlaEngine | None = None
    public_url: str | None = None
    records: Any = None  # omnidesk.db.records.Records: PostgreSQL, for history and search
    archive: Archive | None = None  # raw payloads, where e-mail attachments are read from
    # (channel, account) -> a running connector's `download(file_id, max_bytes)`; read at
    # each request, since the daemon builds its connectors after the plugins' hooks run
    downloaders: Callable[[], dict[tuple[str, str], Downloader]] = dict
    assigner: Assigner = field(init=False)
    desk: Desk = field(init=False)
    tokens: Tokens = field(init=False)
    surveys: Surveys = field(init=False)
    sessions: Sessions = field(init=False)  # directory logins (agents/login.py)
    directory: DirectoryRoster = field(init=False)

    def __post_init__(self) -> None:
        service = self.config().service
        self.assigner = Assigner(self.store, self.roster, service.presence_ttl_s)
        self.desk = Desk(
            self.store, self.roster, self.assigner, self.send_reply, self.sla,
            records=self.records,
        )  # fmt: skip
        self.tokens = Tokens(self.store)
        self.sessions = Sessions(self.store)
        self.directory = DirectoryRoster(self.store)
        self.surveys = Surveys(
            store=self.store,
            queue_wants_csat=self._queue_wants_csat,
            outbound_for=self.desk.outbound_for,
            send_reply=self.send_reply,
            public_url=self._public_url,
        )
        self.desk.on_resolved = self._survey
        self.desk.reachable = self.reachable

    def roster(self) -> Roster:
        """The config's agents, and the directory's when directory login is configured."""
        config = self.config()
        if config.directory is None:
            return Roster(config)
        return Roster(config, self.directory.agents())

    def agent(self, agent_id: str) -> AgentConfig:
        return self.roster().get(agent_id)

    def authenticate(self, token: str | None) -> AgentConfig:
        """The agent a bearer token belongs to; AuthError (401) otherwise, also when the
        agent has since left the config."""
        agent_id = self.tokens.agent_for(token)
        try:
            return self.agent(agent_id)
        except NoSuchAgent:
            raise AuthError("the token's agent is no longer configured") from None

    def attachments(self, agent: AgentConfig, ticket_id: str) -> list[dict[str, Any]]:
        """Every attachment of the ticket's thread, oldest message first."""
        return listing(ticket_id, self.desk.messages(agent, ticket_id), self.reachable)

    def reachable(self, message: Message) -> bool:
        """Where the message's attachment bytes come from is there: its archived raw e-mail,
        or a running connector of its channel and account."""
        if not message.attachments:
            return False
        if message.channel == Channel.EMAIL:
            return archived(self.archive, message)
        if message.channel == Channel.WEB:
            return uploaded_kept(self.archive, message)
        return (message.channel.value, message.account) in self.downloaders()

    def find_attachment(
        self, agent: AgentConfig, ticket_id: str, attachment: str
    ) -> tuple[Message, int]:
        """The message and index an attachment id names, on a ticket the agent may view
        (NotFound / Forbidden as for the ticket)."""
        message_id, index = parse_id(attachment)
        messages = self.desk.messages(agent, ticket_id)
        message = next((m for m in messages if m.id == message_id), None)
        if message is None or not 0 <= index < len(message.attachments):
            raise NotFound(f"no attachment {attachment} on {ticket_id}")
        return message, index

    async def attachment(
        self, agent: AgentConfig, ticket_id: str, attachment: str, *, download: bool = False
    ) -> Served:
        """One attachment's bytes with the headers to serve them with: from the archived
        e-mail, or from the channel by file id (NotFound, AttachmentUnavailable,
        AttachmentTooLarge, ChannelUnavailable)."""
        message, index = await asyncio.to_thread(self.find_attachment, agent, ticket_id, attachment)
        limit = self.config().service.attachments.max_serve_bytes
        fetch = self.downloaders().get((message.channel.value, message.account))
        if message.channel == Channel.EMAIL or fetch is None:
            files = AttachmentFiles(self.archive)
            return await asyncio.to_thread(files.fetch, message, index, limit, download=download)
        att = message.attachments[index]
        reason = unavailable_reason(message, att, reachable=True)
        if reason is not None:
            raise AttachmentUnavailable(f"attachment not available: {reason}")
        if att.size > limit:
            raise AttachmentTooLarge(
                f"the attachment is {att.size} bytes, over the {limit} bytes this server "
                "sends (service.attachments.max_serve_bytes)"
            )
        try:
            data = await fetch(att.ref, limit)
        except TooLarge as exc:
            raise AttachmentTooLarge(f"{exc} (service.attachments.max_serve_bytes)") from None
        except TransientError as exc:
            raise ChannelUnavailable(f"{message.channel.value} did not answer: {exc}") from None
        except PermanentError as exc:
            raise AttachmentUnavailable(f"attachment not available: {exc}") from None
        if att.sha256 and hashlib.sha256(data).hexdigest() != att.sha256:
            raise AttachmentUnavailable(  # WhatsApp says the hash with the message
                "attachment not available: the channel sent other bytes than the message named"
            )
        return served(att, data, None, limit, download=download)

    def authenticate_cookie(self, value: str | None) -> AgentConfig:
        """As `authenticate`, for the session cookie of `Tokens.create_cookie`."""
        agent_id = self.tokens.agent_for_cookie(value)
        try:
            return self.agent(agent_id)
        except NoSuchAgent:
            raise AuthError("the token's agent is no longer configured") from None

    def authenticate_session(
        self, cookie: str | None, method: str, csrf: str | None
    ) -> AgentConfig:
        """As `authenticate`, for a directory login's session cookie (agents/sessions.py):
        a state-changing `method` needs the session's `csrf` token."""
        directory = self.config().directory
        if directory is None:
            raise AuthError("directory login is not configured")
        agent_id = self.sessions.agent_for(cookie, method, csrf, directory.session_ttl_s)
        try:
            return self.agent(agent_id)
        except NoSuchAgent:
            raise AuthError("the session's agent no longer has access") from None

    def queue_summary(self, agent: AgentConfig, risk_s: int = 3600) -> list[dict[str, Any]]:
        """The agent's queues: waiting count, and how many waiting tickets with an SLA due
        time (set by the SLA engine) are past it or due within `risk_s`. The waiting set's
        score is priority band + due ms, so each band is one range read."""
        now_ms = int(time.time() * 1000)
        band = 10**13
        queues = self.roster().queues_of(agent)
        pipe = self.store.r.pipeline(transaction=False)
        for q in queues:
            key = self.store.keys.queue_waiting(q)
            pipe.zcard(key)
            for b in range(4):
                lo, hi = b * band, b * band + now_ms + risk_s * 1000
                pipe.zrangebyscore(key, lo, hi, start=0, num=RISK_SCAN, withscores=True)
        replies = pipe.execute()
        candidates = [
            (i, tid, int(score) % band)
            for i in range(len(queues))
            for chunk in replies[i * 5 + 1 : i * 5 + 5]
            for tid, score in chunk
        ]
        pipe = self.store.r.pipeline(transaction=False)
        for _, tid, _ in candidates:
            pipe.hexists(self.store.keys.ticket(tid), "due_at")
        has_due = pipe.execute() if candidates else []
        breached = [0] * len(queues)
        at_risk = [0] * len(queues)
        for (i, _, due), known in zip(candidates, has_due, strict=True):
            if known:
                if due <= now_ms:
                    breached[i] += 1
                else:
                    at_risk[i] += 1
        cfg = self.config().queues
        return [
            {
                "queue": q,
                "title": cfg[q].title,
                "assignment": cfg[q].assignment,
                "waiting": replies[i * 5],
                "breached": breached[i],
                "at_risk": at_risk[i],
            }
            for i, q in enumerate(queues)
        ]

    def _queue_wants_csat(self, queue: str) -> bool:
        q = self.config().queues.get(queue)
        return bool(q and q.csat)

    def _public_url(self) -> str:
        service = self.config().service
        return (
            self.public_url
            or service.public_url
            or (f"http://{service.http_host}:{service.http_port}")
        )

    def _survey(self, ticket: Ticket, agent: AgentConfig) -> None:
        self.surveys.send(ticket, agent)
