"""What a call becomes: the call book's row (cti_calls), the answering agent's screen-pop,
and the tickets: the one an agent opens or attaches the call to, and the callback ticket of
a call missed or left on voicemail outside business hours.

Tickets go through the one intake path (`Runtime.prepare` then `Intake.many`): the call is a
`phone` channel payload (connectors/phone/normalize.py), archived, routed by the rules (a
rule may match `channel: phone`), given SLA clocks by the intake hooks and copied into
PostgreSQL by the records writer like any message. A callback only has its queue and SLA
policy set from `cti.callback_queue` / `callback_sla_policy` after routing. Every step is
idempotent (the payload's external id is call + purpose), so a PBX resending an event, or
an agent pressing a button twice, opens nothing twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from connectors.base_normalize import e164
from omnidesk.agents import cti_calls as book
from omnidesk.agents.cti_calls import Call, CallEvent
from omnidesk.agents.errors import BadRequest, NotFound
from omnidesk.agents.service import AgentService
from omnidesk.calendar import BusinessCalendar, build_calendars
from omnidesk.config import AgentConfig, CtiConfig
from omnidesk.db.lookup import recorded_messages
from omnidesk.errors import PermanentError, TransientError
from omnidesk.events import EventType
from omnidesk.i18n import N_, gettext
from omnidesk.model import Channel, Identity, IdentityKind, RawPayload, Status, Ticket, utcnow

log = logging.getLogger("omnidesk.agents.cti")

ACTIONS = ("ticket", "attach", "log")
RECENT = 5  # last contacts shown on the screen-pop
OPEN_STATUSES = frozenset(s.value for s in Status if s.is_open)
SUBJECTS = {
    "ticket": N_("Phone call from {caller}"),
    "attach": N_("Phone call from {caller}"),
    "missed": N_("Missed call from {caller}: call back"),
    "voicemail": N_("Voicemail from {caller}: call back"),
}


class Conflict(BadRequest):
    """The call already became something else (another button was pressed first)."""


def _lang_text(msgid: str, **values: str) -> str:
    """A subject in the centre's two languages: Arabic first, then English."""
    return " / ".join(gettext(lang, msgid).format(**values) for lang in ("ar", "en"))


@dataclass
class CtiDesk:
    service: AgentService
    runtime: Any = None  # omnidesk.runtime.Runtime: intake; None where tickets are not opened
    _calendars: tuple[int, dict[str, BusinessCalendar]] | None = field(default=None)

    # ---------------------------------------------------------------- config

    def config(self) -> CtiConfig:
        cti = self.service.config().cti
        if cti is None:
            raise NotFound("calls are not set up here (no cti section in the config)")
        return cti

    def agent_for(self, agent: str | None, extension: str | None) -> tuple[str | None, str | None]:
        """(agent id, extension): an agent named by id, or found by its extension, among the
        config's and the directory's agents (a Redis read: never on the event loop). One
        nobody knows is kept as no agent (the call is recorded, nobody gets a pop), so a PBX
        ahead of the config loses no call."""
        agents = self.service.roster().agents
        if agent:
            found = next((a for a in agents if a.id == agent), None)
            if found is not None:
                return found.id, extension or found.extension
            log.warning("cti: the PBX names agent %r, whom nobody knows here", agent)
        if extension:
            held = [a.id for a in agents if a.extension == extension]
            if len(held) > 1:  # `omnidesk check` refuses it among config agents; the
                # directory's can still clash: the config's agent comes first
                log.warning("cti: extension %r is held by %s; %s gets the call", extension,
                            ", ".join(held), held[0])  # fmt: skip
            return (held[0] if held else None), extension
        return None, None

    def outside_hours(self, at: datetime) -> bool:
        """Whether the callback queue's business calendar is closed at `at`."""
        cfg = self.service.config()
        if self._calendars is None or self._calendars[0] != id(cfg):
            self._calendars = (id(cfg), dict(build_calendars(cfg.calendars)))
        queue = cfg.queues.get(self.config().callback_queue)
        name = queue.calendar if queue else "national"
        calendars = self._calendars[1]
        calendar = calendars.get(name) or calendars.get("national")
        return calendar is not None and not calendar.is_open(at)

    # ---------------------------------------------------------------- events

    def event(self, ev: CallEvent) -> dict[str, Any]:
        """Record one PBX event and do what it causes; the answer's body."""
        records = self._records()
        customer = self._customer(ev.caller) if ev.type in ("new", "answered") else None
        with records.connection() as conn:
            call = book.record(conn, ev, customer)
            duplicate = call is None
            if call is None:
                call = book.find(conn, ev.pbx, ev.call_id)
        if call is None:  # the event was recorded, its call row is gone: an operator's doing
            raise NotFound(f"call {ev.pbx}:{ev.call_id} is not in the records")
        if ev.type == "answered" and call.agent:  # a resend too: its first pop may be lost
            self._pop(call)
        if call.state in book.UNANSWERED and call.disposition is None:
            call = self._maybe_callback(call)
        return {"call": call.key, "state": call.state, "duplicate": duplicate,
                "ticket": call.ticket_id, "disposition": call.disposition}  # fmt: skip

    def _pop(self, call: Call) -> None:
        """The screen-pop: an event on the stream for the answering agent's console only
        (omnidesk.event_hub.visible); the console fetches the call's details by its id.
        Sent once per answering agent: claimed in the call book first (a resend finds it
        claimed; a transfer to another agent pops for that one), given back when Redis
        fails, so the PBX's resend after the 503 sends it."""
        with self._records().connection() as conn:
            claim = book.claim_pop(conn, call)
        if claim is None:
            return
        try:
            self.service.store.add_event(
                EventType.CALL_ANSWERED, "", channel=Channel.PHONE.value, actor="cti",
                agent=call.agent or "", call=call.key, customer=call.customer_id or "",
            )  # fmt: skip
        except Exception:
            with self._records().connection() as conn:
                book.release_pop(conn, call, claim)
            raise

    def _maybe_callback(self, call: Call) -> Call:
        when = call.ended_at or call.started_at
        if not self.outside_hours(when):
            return call
        cti = self.config()
        ticket = self._take_in(call, "callback", call.state, queue=cti.callback_queue)
        with self._records().connection() as conn:
            book.dispose(conn, call, "callback", ticket)
            return book.find(conn, call.pbx, call.call_id) or call

    # ---------------------------------------------------------------- the agent's side

    def call_for(self, agent: AgentConfig, key: str) -> Call:
        """The call if it is the agent's to see: one they answered, or, for a supervisor,
        one in their queues' scope (call_in_scope)."""
        pbx, _, call_id = key.partition(":")
        with self._records().connection() as conn:
            call = book.find(conn, pbx, call_id) if call_id else None
        # another agent's call is as unknown as none: its caller is not theirs to see
        if call is None or (
            call.agent != agent.id
            and (agent.role != "supervisor" or not self.call_in_scope(agent, call))
        ):
            raise NotFound(f"no call {key!r} answered by you")
        return call

    def call_in_scope(self, supervisor: AgentConfig, call: Call) -> bool:
        """Whether the call is in the supervisor's queues' scope: its branch is one of their
        queues or those queues' regions (as the call report counts it), or the agent who
        answered works one of their queues."""
        roster = self.service.roster()
        cfg = roster.config
        queues = set(roster.queues_of(supervisor))
        regions = {cfg.queues[q].region for q in queues if cfg.queues[q].region}
        if call.branch and call.branch in queues | regions:
            return True
        answered = next((a for a in roster.agents if a.id == call.agent), None)
        return answered is not None and bool(queues & set(answered.queues))

    def screen_pop(self, agent: AgentConfig, key: str) -> dict[str, Any]:
        """The call, its customer, their open tickets and last contacts."""
        call = self.call_for(agent, key)
        out: dict[str, Any] = {"call": call.as_json(), "customer": None, "open_tickets": [],
                               "recent": []}  # fmt: skip
        if call.customer_id is None:
            return out
        store = self.service.store
        customer = store.get_customer(call.customer_id)
        tickets = {t.id: _ticket_json(t) for t in store.customer_tickets(call.customer_id, 20)}
        with self._records().connection() as conn:
            for row in book.recent_tickets(conn, call.customer_id, 20):
                tickets.setdefault(row[0], _row_json(row))
        # only tickets of queues the agent may see, as everywhere else in the console
        queues = set(self.service.roster().queues_of(agent))
        shown = [t for t in tickets.values() if t["queue"] in queues]
        ordered = sorted(shown, key=lambda t: t["updated_at"], reverse=True)
        if customer is not None:
            out["customer"] = {"id": customer.id, "name": customer.name,
                               "segment": customer.segment.value, "region": customer.region,
                               "tags": customer.tags}  # fmt: skip
        else:
            out["customer"] = {"id": call.customer_id}
        out["open_tickets"] = [t for t in ordered if t["status"] in OPEN_STATUSES]
        out["recent"] = ordered[:RECENT]
        return out

    def dispose(
        self, agent: AgentConfig, key: str, action: str, ticket: str | None, note: str
    ) -> dict[str, Any]:
        """The agent's choice: open a ticket, attach the call to an open one, or log it."""
        if action not in ACTIONS:
            raise BadRequest(f"action: one of {', '.join(ACTIONS)}")
        call = self.call_for(agent, key)
        target = None
        if action == "attach":
            target = self._open_ticket_of(agent, call, ticket)
        if action != "log" and call.disposition in (None, action):
            target = self._take_in(call, action, "ticket", ticket=target, note=note)
            if action == "ticket":
                self._hand_to(agent, target)
        disposition = "logged" if action == "log" else action
        with self._records().connection() as conn:
            if not book.dispose(conn, call, disposition, target):
                raise Conflict(f"the call was already {call.disposition}", "call_disposed")
            call = book.find(conn, call.pbx, call.call_id) or call
        return call.as_json()

    def _hand_to(self, agent: AgentConfig, ticket_id: str) -> None:
        """The ticket the agent opened for a call is theirs when it landed in one of their
        queues and they have room (the claim's capacity rule); else it waits in its queue."""
        found = self.service.store.get_tickets([ticket_id])
        if (
            not found
            or found[0].assignee
            or found[0].queue not in self.service.roster().queues_of(agent)
        ):
            return
        handed = self.service.assigner.hand_to(ticket_id, agent, agent.id, found[0].queue)
        if handed.outcome not in ("assigned", "same"):
            log.info("call ticket %s stays in %s (%s)", ticket_id, found[0].queue, handed.outcome)

    def _open_ticket_of(self, agent: AgentConfig, call: Call, ticket: str | None) -> str:
        if not ticket:
            raise BadRequest("ticket: required to attach a call")
        found = self.service.store.get_tickets([ticket])
        if not found or not self.service.roster().may_access(agent, found[0].queue):
            # another queue's ticket answers as one that does not exist: nothing told apart
            raise NotFound(f"no ticket {ticket}", "not_found", ticket=ticket)
        if found[0].customer_id != call.customer_id or not found[0].status.is_open:
            raise BadRequest(f"ticket: {ticket!r} is not an open ticket of the caller")
        return ticket

    # ---------------------------------------------------------------- intake

    def _take_in(
        self, call: Call, purpose: str, subject: str, *, queue: str | None = None,
        ticket: str | None = None, note: str = "",
    ) -> str:  # fmt: skip
        """The ticket the call opened or joined, through the one intake path."""
        runtime = self.runtime
        if runtime is None:
            raise TransientError("this process takes no calls in; try the daemon")
        caller = call.caller or "?"
        text = note or _lang_text(SUBJECTS[subject], caller=caller)
        payload = {"call": call.key, "purpose": purpose, "caller": call.caller,
                   "at": (call.ended_at or call.started_at).isoformat(),
                   "subject": _lang_text(SUBJECTS[subject], caller=caller), "text": text,
                   "ticket": ticket or "", "recording": call.recording or ""}  # fmt: skip
        raw = RawPayload(
            channel=Channel.PHONE, account=call.pbx, received_at=utcnow(),
            payload=json.dumps(payload, ensure_ascii=False).encode(),
            source=f"cti:{call.key}:{purpose}",
        )  # fmt: skip
        items = runtime.prepare(raw)
        if items is None:
            raise PermanentError(f"call {call.key}: its payload was quarantined")
        if queue is not None:
            items = [(inbound, self._callback_route(decision)) for inbound, decision in items]
        results = runtime.intake.many(items) if items else []
        found = next((r.ticket_id for r in results if r.ticket_id), None)
        return found or self._recorded_ticket(call, purpose)

    def _callback_route(self, decision: Any) -> Any:
        cti, cfg = self.config(), self.service.config()
        queue = cfg.queues[cti.callback_queue]
        policy = cti.callback_sla_policy or queue.sla_policy or decision.sla_policy
        return msgspec.structs.replace(
            decision, queue=cti.callback_queue, sla_policy=policy,
            region=decision.region or queue.region,
        )  # fmt: skip

    def _recorded_ticket(self, call: Call, purpose: str) -> str:
        """A payload PostgreSQL already holds (taken in before, left Redis since)."""
        key = (Channel.PHONE.value, call.pbx, f"{call.key}:{purpose}")
        with self._records().connection() as conn:
            found = recorded_messages(conn, [key])
        for _mid, tid in found.values():
            return tid
        raise PermanentError(f"call {call.key}: intake opened no ticket")

    # ---------------------------------------------------------------- lookups

    def _customer(self, caller: str) -> str | None:
        """The customer the number belongs to on any channel: its phone identity, or its
        WhatsApp id (the same digits); Redis first, then the records."""
        if not caller.startswith("+"):
            return None
        keys = [Identity(IdentityKind.PHONE, caller), Identity(IdentityKind.WHATSAPP, caller[1:])]
        for identity in keys:
            found = self.service.store.find_customer(identity)
            if found:
                return found
        with self._records().connection() as conn:
            return book.customer_by_identities(conn, [i.key for i in keys])

    def _records(self) -> Any:
        if self.service.records is None:
            raise TransientError("the call book needs PostgreSQL, which is not configured")
        return self.service.records


def read_event(desk: CtiDesk, pbx: str, body: Any) -> CallEvent:
    """A checked CallEvent from the request's body model (omnidesk.agents.bodies)."""
    if body.type not in book.EVENT_TYPES:
        raise BadRequest(f"type: one of {', '.join(book.EVENT_TYPES)}")
    try:
        at = datetime.fromisoformat(body.at)
    except ValueError:
        raise BadRequest("at: not an ISO 8601 time") from None
    conf = desk.config().pbx[pbx]
    caller = (body.caller or "").strip()[:64]
    agent, extension = desk.agent_for(body.agent, body.extension)
    return CallEvent(
        pbx=pbx, event_id=body.event_id, call_id=body.call_id, type=body.type,
        at=at if at.tzinfo else at.replace(tzinfo=UTC), branch=conf.branch,
        caller=e164(caller, conf.default_region) or caller, agent=agent, extension=extension,
        duration_s=body.duration_s, recording=body.recording,
    )  # fmt: skip


def _ticket_json(t: Ticket) -> dict[str, Any]:
    return {"id": t.id, "channel": t.channel.value, "status": t.status.value, "queue": t.queue,
            "subject": t.subject, "created_at": t.created_at.isoformat(),
            "updated_at": t.updated_at.isoformat()}  # fmt: skip


def _row_json(row: tuple) -> dict[str, Any]:
    tid, channel, status, queue, subject, created, updated = row
    return {"id": tid, "channel": channel, "status": status, "queue": queue,
            "subject": subject, "created_at": created.isoformat(),
            "updated_at": updated.isoformat()}  # fmt: skip
