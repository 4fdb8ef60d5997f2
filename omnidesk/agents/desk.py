"""What an agent does to a ticket: view, reply, note, transfer, pending, resolve, reopen,
merge, tag, change priority. Every action checks the agent's access first (Forbidden) and
writes an event with the agent as actor.

The SLA engine plugs in through `sla` (an `omnidesk.sla.protocol.SlaEngine`: its
`on_agent_reply`, `on_status` and `on_transfer` hooks and, for the view, `summary`,
`explain` and `explain_data`). Replies go out through
`send_reply(outbound)`: the pipeline's `deliver` actor in the daemon.

Kept whole though over 500 lines: the Desk class is the agents' actions on a ticket, each
short, over the same store and SLA hooks; its refusals are errors.py, assignment assign.py.
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.client

from omnidesk.agents.assign import Assigner, scripts
from omnidesk.agents.attachments import describe
from omnidesk.agents.errors import BadRequest, NotFound
from omnidesk.agents.roster import Forbidden, Roster
from omnidesk.config import AgentConfig
from omnidesk.db.connect import RecordsUnavailable
from omnidesk.db.tickets import Page, list_tickets, records_have_tickets
from omnidesk.db.ticketview import load_ticket, ticket_events
from omnidesk.events import EventType
from omnidesk.intake import new_message_id
from omnidesk.model import (
    Direction,
    Message,
    Outbound,
    Priority,
    Status,
    Ticket,
    to_builtins,
    utcnow,
)
from omnidesk.outbound import Known, SendReply, outbound_for
from omnidesk.replies import entries, text, text_or_none
from omnidesk.sla.protocol import SlaEngine
from omnidesk.store import TICKET_ID, Store, guarded, ms, run_script
from omnidesk.templates import render, reply_language, template_text
from omnidesk.ticket_status import queue_name

log = logging.getLogger("omnidesk.agents")

HISTORY_SCAN = 20_000  # events looked back through for one ticket's history
MAX_TEXT = 20_000
MAX_REASON = 500  # why a ticket waits: one line the console shows by the SLA clocks


@dataclass
class Desk:
    store: Store
    roster: Callable[[], Roster]
    assigner: Assigner
    send_reply: SendReply
    sla: SlaEngine | None = None  # omnidesk.sla.engine.SlaClocks when the SLA engine runs
    on_resolved: Callable[[Ticket, AgentConfig], None] | None = None  # CSAT survey
    # omnidesk.db.records.Records: lists, and tickets and history past Redis, when set
    records: Any = None
    # a message whose attachment bytes can be had here (AgentService.reachable sets it)
    reachable: Callable[[Message], bool] = lambda message: False

    # -------------------------------------------------------- reading

    def _visible(
        self, agent: AgentConfig, ticket_id: str
    ) -> tuple[Ticket | None, dict[str, Any] | None]:
        """(the live ticket, None) or (None, its record) when only PostgreSQL has it, once
        the agent may see it: NotFound / Forbidden otherwise, alike for both."""
        ticket = self.store.get_ticket(ticket_id)
        if ticket is not None:
            self.roster().check(agent, ticket.queue)
            return ticket, None
        cold = self._recorded(ticket_id)
        if cold is None:
            raise NotFound(f"no ticket {ticket_id}", "not_found", ticket=ticket_id)
        self.roster().check(agent, cold["ticket"].queue)
        return None, cold

    def ticket(self, agent: AgentConfig, ticket_id: str) -> Ticket:
        """The live ticket, if the agent may see it: NotFound / Forbidden otherwise; one
        that has left Redis is only in the records, where it can be viewed, not changed."""
        ticket, cold = self._visible(agent, ticket_id)
        if ticket is None:
            assert cold is not None
            raise BadRequest(
                f"{ticket_id} is {cold['ticket'].status.value} and has left the live desk: "
                "it can be viewed, not changed (a new message from the customer opens a "
                "new ticket)",
                "left_live_desk",
                ticket=ticket_id,
            )
        return ticket

    def _recorded(self, ticket_id: str) -> dict[str, Any] | None:
        if self.records is None or not TICKET_ID.fullmatch(ticket_id):
            return None

        with self.records.connection() as conn:
            return load_ticket(conn, ticket_id)

    def view(self, agent: AgentConfig, ticket_id: str) -> dict[str, Any]:
        """Thread, customer and their other tickets, SLA state, history, CSAT."""
        ticket, cold = self._visible(agent, ticket_id)
        if ticket is None:
            assert cold is not None
            return self._recorded_view(agent, cold)
        messages = sorted(self.store.ticket_messages(ticket.id), key=lambda m: m.created_at)
        customer = self.store.get_customer(ticket.customer_id)
        others = [t for t in self.store.customer_tickets(ticket.customer_id) if t.id != ticket.id]
        extra = self._ticket_extra(ticket.id)
        history = self.history(ticket.id)
        waiting = ticket.status == Status.PENDING_CUSTOMER
        return {
            "ticket": {**to_builtins(ticket), **extra},
            "messages": [self._message_view(ticket.id, m) for m in messages],
            "customer": to_builtins(customer) if customer else None,
            "other_tickets": [self._other_ticket(agent, t) for t in others],
            "sla": self._sla(ticket.id, extra),
            "history": history,
            # why it waits, from its events (erasure blanks them): the SLA pause is only named
            "pending_reason": pending_reason(history) if waiting else "",
        }

    def messages(self, agent: AgentConfig, ticket_id: str) -> list[Message]:
        """The thread of a ticket the agent may view, live (Redis) or only in the records:
        NotFound / Forbidden exactly as for `view`."""
        ticket, cold = self._visible(agent, ticket_id)
        if ticket is None:
            assert cold is not None
            return list(cold["messages"])
        return self.store.ticket_messages(ticket.id)

    def _message_view(self, ticket_id: str, message: Message) -> dict[str, Any]:
        """A message as the view shows it: attachments with id, download URL, availability."""
        out = to_builtins(message)
        out["attachments"] = describe(ticket_id, message, self.reachable(message))
        return out

    def _recorded_view(self, agent: AgentConfig, cold: dict[str, Any]) -> dict[str, Any]:
        """The same view of a ticket only PostgreSQL holds now (no live SLA clocks); the
        agent's right to see it was checked (_visible)."""
        ticket: Ticket = cold["ticket"]
        customer = cold["customer"]
        return {
            "ticket": {**to_builtins(ticket), **cold["extra"], "live": False},
            "messages": [self._message_view(ticket.id, m) for m in cold["messages"]],
            "customer": to_builtins(customer) if customer else None,
            "other_tickets": [],
            "sla": None,
            "history": self.history(ticket.id),
        }

    def _other_ticket(self, agent: AgentConfig, ticket: Ticket) -> dict[str, Any]:
        """One of the customer's other tickets: in full where the agent may open its queue,
        else only its id: a subject or queue name can tell what a fraud report is about."""
        if not self.roster().may_access(agent, ticket.queue):
            return {"id": ticket.id, "visible": False, "restricted": True}
        return {
            "id": ticket.id,
            "channel": ticket.channel.value,
            "status": ticket.status.value,
            "queue": ticket.queue,
            "subject": ticket.subject,
            "created_at": ticket.created_at.isoformat(),
            "visible": True,
        }

    @guarded
    def _ticket_extra(self, ticket_id: str) -> dict[str, str]:
        """Hash fields the Ticket struct does not carry (due_at, csat_*, merged_into, ...)."""
        names = ["due_at", "csat_score", "csat_comment", "csat_at", "merged_into", "last_assignee"]
        values = self.store.r.hmget(self.store.keys.ticket(ticket_id), names)
        return {k: text(v) for k, v in zip(names, values, strict=True) if v is not None}

    def _sla(self, ticket_id: str, extra: dict[str, str]) -> Any:
        if self.sla is not None:
            try:
                return to_builtins(self.sla.summary(ticket_id))
            except Exception as exc:  # the view still works without the clocks
                log.warning("SLA summary of %s: %s", ticket_id, exc)
        return {"due_at": extra.get("due_at")} if extra.get("due_at") else None

    def sla_brief(self, ticket_id: str) -> dict[str, Any] | None:
        """The clock a list shows for the ticket: the running one with the least business
        time left, else a paused one, else None (no clocks, or all stopped)."""
        clocks = self._sla(ticket_id, {})
        if not isinstance(clocks, list):
            return None
        order = {"running": 0, "paused": 1}
        live = [c for c in clocks if c.get("state") in order]
        if not live:
            return None
        live.sort(key=lambda c: (order[c["state"]], c.get("remaining_seconds", 0)))
        return live[0]

    def sla_explain(self, ticket_id: str) -> list[str]:
        """Why each clock's due time is what it is (policy, calendar, pauses), as the CLI's
        `omnidesk sla explain` prints it; empty without live clocks."""
        if self.sla is None:
            return []
        try:
            return list(self.sla.explain(ticket_id))
        except Exception as exc:  # the view still works without the explanation
            log.warning("SLA explanation of %s: %s", ticket_id, exc)
            return []

    def sla_explained(self, ticket_id: str) -> dict[str, Any] | None:
        """`sla_explain` as data (policy, calendar, each clock's state, banked time, pauses)
        for the console to word in the agent's language; None without live clocks."""
        if self.sla is None:
            return None
        try:
            return self.sla.explain_data(ticket_id)
        except Exception as exc:  # the view still works without the explanation
            log.warning("SLA explanation of %s: %s", ticket_id, exc)
            return None

    def history(self, ticket_id: str, limit: int = 200) -> list[dict[str, str]]:
        """The ticket's events, oldest first: what PostgreSQL has recorded, and the stream's
        entries not yet written there (the stream is trimmed behind the records writer)."""
        live = self._stream_history(ticket_id, limit)
        if self.records is None:
            return live

        try:
            with self.records.connection() as conn:
                recorded = ticket_events(conn, ticket_id, limit)
        except RecordsUnavailable as exc:  # the live tail still shows
            log.warning("history of %s from the records: %s", ticket_id, exc)
            return live
        seen = {e["id"] for e in recorded}
        merged = recorded + [e for e in live if e["id"] not in seen]
        merged.sort(key=lambda e: tuple(int(x) for x in e["id"].split("-")))
        return merged[-limit:]

    @guarded
    def _stream_history(self, ticket_id: str, limit: int) -> list[dict[str, str]]:
        """The ticket's events still in the stream. Stream ids are ms timestamps, so only
        events since the ticket was created are read (at most HISTORY_SCAN of them)."""
        created = text_or_none(self.store.r.hget(self.store.keys.ticket(ticket_id), "created_ms"))
        now_ms = ms(utcnow())  # a sender's clock ahead of ours must not hide the history
        since = max(0, min(int(created or 0), now_ms) - 60_000)
        newest_first = self.store.r.xrevrange(
            self.store.keys.events(), max="+", min=str(since), count=HISTORY_SCAN
        )
        mine = [
            {"id": eid, **fields}
            for eid, fields in entries(newest_first)
            if fields.get("ticket") == ticket_id
        ]
        return mine[:limit][::-1]

    def list(
        self,
        agent: AgentConfig,
        queue: str | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> builtins.list[Ticket]:
        return self.page(agent, queue=queue, status=status, limit=limit).tickets

    def page(self, agent: AgentConfig, queue: str | None = None, **filters: Any) -> Page:
        """A page of the tickets the agent may see, newest first: from PostgreSQL (any
        filter, keyset pages: omnidesk.db.tickets) when the records hold tickets, else from
        Redis (queue and status only, one page)."""
        queues = self.roster().queues_of(agent)
        if queue is not None:
            self.roster().check(agent, queue)
            queues = [queue]
        if self.records is not None:
            page = self._page_from_records(queues, filters)
            if page is not None:
                return page
        limit = int(filters.pop("limit", 50))
        status = filters.pop("status", None)
        extra = sorted(k for k, v in filters.items() if v is not None)
        if extra:
            raise BadRequest(f"{', '.join(extra)}: these filters need the records (PostgreSQL)")
        out: list[Ticket] = []
        for q in queues:
            out += self.store.list_tickets(queue=q, status=status, limit=limit)
        out.sort(key=lambda t: t.created_at, reverse=True)
        return Page(out[:limit], None)

    def _page_from_records(
        self, queues: builtins.list[str], filters: dict[str, Any]
    ) -> Page | None:
        try:
            with self.records.connection() as conn:
                if not records_have_tickets(conn):
                    return None
                return list_tickets(conn, queue=queues, **filters)
        except RecordsUnavailable as exc:
            log.warning("ticket list from Redis: %s", exc)
            return None

    def mine(self, agent: AgentConfig) -> builtins.list[Ticket]:
        return self.store.get_tickets(self.assigner.held(agent.id))

    # -------------------------------------------------------- replies and notes

    def reply(
        self,
        agent: AgentConfig,
        ticket_id: str,
        text: str = "",
        *,
        template: str | None = None,
        language: str | None = None,
    ) -> Message:
        """Record the reply (delivery "queued") and hand it to `deliver`."""
        ticket = self.ticket(agent, ticket_id)
        if template:
            text = self.render_template(template, ticket, agent, language)
        text = _clean_text(text)
        known = Known(
            self.store.get_customer(ticket.customer_id), self.store.ticket_messages(ticket.id)
        )
        outbound = self.outbound_for(
            ticket, text, known=known, **self._reply_meta(ticket, agent, known)
        )
        message = self.store.add_outbound_message(outbound, agent.id)
        if ticket.status == Status.NEW:
            self.store.set_status(ticket.id, Status.OPEN, agent.id)
        self.send_reply(outbound)
        self._sla_call("on_agent_reply", ticket, lambda sla: sla.on_agent_reply(ticket))
        return message

    def note(self, agent: AgentConfig, ticket_id: str, text: str) -> Message:
        """An internal note: kept on the thread, never sent."""
        ticket = self.ticket(agent, ticket_id)
        outbound = Outbound(
            id=new_message_id(),
            ticket_id=ticket.id,
            channel=ticket.channel,
            account=ticket.account,
            text=_clean_text(text),
        )
        return self.store.add_outbound_message(outbound, agent.id, Direction.NOTE)

    def outbound_for(
        self, ticket: Ticket, text: str, *, known: Known | None = None, **meta: str
    ) -> Outbound:
        """An Outbound on the ticket's channel and account, threaded under the last message
        the customer sent (omnidesk.outbound.outbound_for)."""
        return outbound_for(self.store, ticket, text, known=known, **meta)

    def _reply_meta(self, ticket: Ticket, agent: AgentConfig, known: Known) -> dict[str, str]:
        """What a channel needs beyond the text when free text is not allowed (WhatsApp
        outside its 24-hour window): the values its approved template is filled from, and
        when the customer last wrote, where that window starts."""
        customer = known.customer
        queues = self.roster().config.queues
        values = {
            "customer_name": (customer.name if customer else "") or "",
            "agent_name": agent.name or agent.id,
            "ticket_id": ticket.id,
            "queue": queue_name(queues, ticket.queue, reply_language(ticket.language)),
        }
        meta = {"template_values": json.dumps(values, ensure_ascii=False)}
        wrote = [
            m.created_at
            for m in known.messages
            if m.direction == Direction.IN and m.channel == ticket.channel
        ]
        if wrote:
            meta["last_customer_at"] = max(wrote).isoformat()
        return meta

    def preview_template(
        self, agent: AgentConfig, ticket_id: str, name: str, language: str | None = None
    ) -> str:
        """The canned reply filled for the ticket, read-only: a ticket that has left Redis
        is previewed from its record (its customer too) as well as a live one."""
        ticket, cold = self._visible(agent, ticket_id)
        if ticket is not None:
            return self.render_template(name, ticket, agent, language)
        assert cold is not None
        customer = cold["customer"]
        name_of = (getattr(customer, "name", None) or "") if customer else ""
        return self.render_template(name, cold["ticket"], agent, language, name_of)

    def render_template(
        self,
        name: str,
        ticket: Ticket,
        agent: AgentConfig,
        language: str | None = None,
        customer_name: str | None = None,
    ) -> str:
        templates = self.roster().config.templates
        if name not in templates:
            raise NotFound(f"no template {name!r}")
        lang = language or reply_language(ticket.language)
        body = template_text(templates[name], lang)
        if customer_name is None:
            customer = self.store.get_customer(ticket.customer_id)
            customer_name = (customer.name if customer else "") or ""
        values = {
            "customer_name": customer_name,
            "ticket_id": ticket.id,
            "agent_name": agent.name or agent.id,
            # the customer reads it: the queue's public_title, never its id
            "queue": queue_name(self.roster().config.queues, ticket.queue, lang),
        }
        return render(body, values)

    # -------------------------------------------------------- status and queue

    def transfer(self, agent: AgentConfig, ticket_id: str, queue: str, reason: str) -> Ticket:
        ticket = self.ticket(agent, ticket_id)
        if queue not in self.roster().config.queues:
            raise BadRequest(f"no queue {queue!r}", "no_queue", queue=queue)
        if queue == ticket.queue:
            raise BadRequest(
                f"{ticket.id} is already in {queue}",
                "already_in_queue",
                ticket=ticket.id,
                queue=queue,
            )
        if not reason.strip():
            raise BadRequest("a transfer needs a reason", "needs_reason")
        held_by = self.assigner.release(ticket.id)
        self.store.move(
            ticket.id, queue, agent.id, event=EventType.TRANSFERRED, reason=reason.strip()
        )
        self._sla_call("on_transfer", ticket, lambda sla: sla.on_transfer(ticket, queue))
        self.assigner.push(queue)
        if held_by:
            self.assigner.push_for(held_by)
        return self._reload(ticket.id)

    def pending(self, agent: AgentConfig, ticket_id: str, reason: str = "") -> Ticket:
        """Wait for the customer. The agent's reason (it may quote the customer) goes only
        into the status_changed event, which erasure blanks; the SLA pause is named by the
        status. A reason given to a ticket already pending is recorded the same way (from and
        to both pending_customer): the clocks stay paused."""
        why = _clean_reason(reason)
        ticket = self.ticket(agent, ticket_id)
        if ticket.status == Status.PENDING_CUSTOMER and why:
            self.store.add_event(
                EventType.STATUS_CHANGED,
                ticket.id,
                queue=ticket.queue,
                channel=ticket.channel.value,
                actor=agent.id,
                reason=why,
                **{"from": Status.PENDING_CUSTOMER.value, "to": Status.PENDING_CUSTOMER.value},
            )
            return ticket
        return self._status(agent, ticket_id, Status.PENDING_CUSTOMER, why)

    def resolve(self, agent: AgentConfig, ticket_id: str) -> Ticket:
        before = self.ticket(agent, ticket_id)
        if before.status == Status.RESOLVED:
            return before  # resolving twice sends no second survey
        ticket = self._status(agent, ticket_id, Status.RESOLVED)
        held_by = self.assigner.release(ticket.id)
        if held_by:
            self.assigner.push_for(held_by)
        if self.on_resolved is not None:
            try:
                self.on_resolved(ticket, agent)
            except Exception:  # a survey that fails to go out must not undo the resolve
                log.exception("CSAT survey for %s", ticket.id)
        return ticket

    def reopen(self, agent: AgentConfig, ticket_id: str) -> Ticket:
        ticket = self.ticket(agent, ticket_id)
        if ticket.status not in (Status.RESOLVED, Status.CLOSED, Status.PENDING_CUSTOMER):
            raise BadRequest(f"{ticket.id} is {ticket.status.value}, not resolved or pending")
        ticket = self._status(agent, ticket_id, Status.OPEN)
        self.assigner.push(ticket.queue)
        return self._reload(ticket.id)

    def _status(
        self, agent: AgentConfig, ticket_id: str, status: Status, reason: str = ""
    ) -> Ticket:
        ticket = self.ticket(agent, ticket_id)
        if ticket.status == Status.CLOSED and status != Status.OPEN:
            raise BadRequest(f"{ticket.id} is closed", "ticket_closed", ticket=ticket.id)
        if ticket.status == status:
            return ticket
        self.store.set_status(ticket.id, status, agent.id, reason)
        self._sla_call("on_status", ticket, lambda sla: sla.on_status(ticket, status))
        return self._reload(ticket.id)

    # -------------------------------------------------------- merge, tags, priority

    @guarded
    def merge(self, agent: AgentConfig, ticket_id: str, into: str) -> Ticket:
        """Move `ticket_id`'s thread into `into` (same customer); the first one closes."""
        src = self.ticket(agent, ticket_id)
        self.ticket(agent, into)
        now = utcnow()
        reply = run_script(
            scripts(self.store)["merge"], self.store.prefix, src=src.id, dst=into,
            actor=agent.id, now_ms=ms(now), now_iso=now.isoformat(),
        )  # fmt: skip
        if reply[0] == "error":
            raise BadRequest(reply[1])
        if src.assignee:
            self.assigner.push_for(src.assignee)
        self._sla_call("on_status", src, lambda sla: sla.on_status(src, Status.CLOSED))
        return self._reload(into)

    @guarded
    def tag(
        self,
        agent: AgentConfig,
        ticket_id: str,
        add: builtins.list[str],
        remove: builtins.list[str],
    ) -> Ticket:
        ticket = self.ticket(agent, ticket_id)
        for name in (*add, *remove):
            if not isinstance(name, str) or not name.strip() or len(name) > 64:
                raise BadRequest(f"bad tag {name!r}")
        key = self.store.keys.ticket(ticket.id)

        def retag(pipe: redis.client.Pipeline) -> None:
            """Read the tags under WATCH and write the new list; redis-py runs it again if
            the ticket changed in between."""
            tags = msgspec.json.decode(pipe.hget(key, "tags") or "[]")
            new = [t for t in dict.fromkeys([*tags, *add]) if t not in set(remove)]
            pipe.multi()
            pipe.hset(key, "tags", msgspec.json.encode(new).decode())

        self.store.r.transaction(retag, key)
        self.store.add_event(
            EventType.TAGGED,
            ticket.id,
            queue=ticket.queue,
            channel=ticket.channel.value,
            actor=agent.id,
            added=",".join(add),
            removed=",".join(remove),
        )
        return self._reload(ticket.id)

    @guarded
    def set_priority(self, agent: AgentConfig, ticket_id: str, priority: str) -> Ticket:
        ticket = self.ticket(agent, ticket_id)
        try:
            new = Priority(priority)
        except ValueError:
            raise BadRequest(f"priority must be one of {', '.join(Priority)}") from None
        now = utcnow()
        run_script(
            scripts(self.store)["set_priority"], self.store.prefix, ticket=ticket.id,
            priority=new.value, rank=new.rank, actor=agent.id, now_ms=ms(now),
        )  # fmt: skip
        return self._reload(ticket.id)

    # -------------------------------------------------------- helpers

    def _reload(self, ticket_id: str) -> Ticket:
        ticket = self.store.get_ticket(ticket_id)
        if ticket is None:
            raise NotFound(f"no ticket {ticket_id}", "not_found", ticket=ticket_id)
        return ticket

    def _sla_call(self, name: str, ticket: Ticket, hook: Callable[[SlaEngine], object]) -> None:
        """The SLA engine's hook `name`, when one is plugged in; its failure never undoes the
        action."""
        if self.sla is None:
            return
        try:
            hook(self.sla)
        except Exception:
            log.exception("SLA hook %s failed for %s", name, ticket.id)


def _clean_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("the text is empty", "empty_text")
    if len(text) > MAX_TEXT:
        raise BadRequest(
            f"the text is longer than {MAX_TEXT} characters", "text_too_long", limit=str(MAX_TEXT)
        )
    return text.strip()


def _clean_reason(reason: str) -> str:
    """Why a ticket waits, stripped ("" for none): a short line, not a second message."""
    if not reason or not isinstance(reason, str) or not reason.strip():
        return ""
    if len(reason.strip()) > MAX_REASON:
        raise BadRequest(
            f"the reason is longer than {MAX_REASON} characters",
            "reason_too_long",
            limit=str(MAX_REASON),
        )
    return reason.strip()


def pending_reason(history: list[dict[str, str]]) -> str:
    """The reason of the latest change to pending_customer in a ticket's events ("" for none):
    what the console shows by the paused clocks (the SLA state itself holds no free text)."""
    for event in reversed(history):
        if event.get("type") == EventType.STATUS_CHANGED and event.get("to") == "pending_customer":
            return event.get("reason") or ""
    return ""


__all__ = ["BadRequest", "Desk", "Forbidden", "NotFound"]
