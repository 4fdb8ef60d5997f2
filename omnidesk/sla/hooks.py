"""The SLA transitions the rest of the daemon calls: intake, agents, transfers.

Each hook loads the ticket's record, applies the pure transition (`omnidesk.sla.ticket`) and
writes it back with a compare-and-set (`SlaRecords._update`).
"""

from __future__ import annotations

from datetime import datetime

from omnidesk.intake import IntakeHooks
from omnidesk.model import Status, Ticket
from omnidesk.sla.records import SlaRecords
from omnidesk.sla.ticket import (
    SlaState,
    agent_replied,
    customer_wrote,
    open_state,
    reopen_ticket,
    status_changed,
    transfer_ticket,
)


class SlaHooks(SlaRecords):
    """Transitions for intake and agents, on the stored records."""

    def on_opened(
        self, ticket: Ticket, now: datetime | None = None, opened: datetime | None = None
    ) -> SlaState | None:
        """A new ticket: start its clocks (a second call for the same ticket changes nothing);
        `opened`, when intake opened it, where `updated_at` may have moved since."""
        at = now or self.clock()
        opening = self.opening(ticket, at, opened)
        if opening is None:
            return None

        def change(state: SlaState | None) -> SlaState | None:
            if state is not None:
                return state
            return open_state(self.ctx, ticket.id, *opening)

        return self._update(ticket.id, at, change)

    def on_customer_message(self, ticket: Ticket, now: datetime | None = None) -> SlaState | None:
        """The customer wrote again: resume paused clocks, time the next response; a ticket
        intake reopened gets its resolution clock back with what was left."""
        at = now or self.clock()
        if self.state(ticket.id) is None:  # a hook missed its opening: from intake's time
            return self.on_opened(ticket, at, self.store.opened_at([ticket.id]).get(ticket.id))
        reopened = Status(ticket.status) in (Status.NEW, Status.OPEN)

        def change(state: SlaState | None) -> SlaState | None:
            if state is None:
                return None
            resolution = state.clocks.get("resolution")
            if reopened and resolution is not None and resolution.state == "stopped":
                state = reopen_ticket(state, self.ctx, at)  # intake reopened the ticket
            return customer_wrote(state, self.ctx, at)

        return self._update(ticket.id, at, change)

    def on_agent_reply(self, ticket: Ticket, now: datetime | None = None) -> SlaState | None:
        at = now or self.clock()
        return self._update(ticket.id, at, lambda s: agent_replied(s, self.ctx, at) if s else None)

    def on_status(
        self,
        ticket: Ticket,
        status: Status | str,
        now: datetime | None = None,
    ) -> SlaState | None:
        """Pause on the policy's pause statuses (named by the status), stop on resolve/close,
        reopen or resume."""
        at, status = now or self.clock(), Status(status)

        def change(state: SlaState | None) -> SlaState | None:
            if state is None:
                return None
            resolution = state.clocks.get("resolution")
            if status in (Status.NEW, Status.OPEN) and resolution and resolution.state == "stopped":
                return reopen_ticket(state, self.ctx, at)
            return status_changed(state, self.ctx, at, status)

        return self._update(ticket.id, at, change)

    def on_transfer(
        self, ticket: Ticket, new_queue: str, now: datetime | None = None
    ) -> SlaState | None:
        """Keep the elapsed time; the new queue's calendar (and policy, if it has one) from now."""
        at = now or self.clock()
        q = self.config.queues.get(new_queue)
        calendar = q.calendar if q is not None else "national"

        def change(state: SlaState | None) -> SlaState | None:
            if state is None:
                return None
            policy = (q.sla_policy if q is not None else None) or state.policy
            return transfer_ticket(state, self.ctx, at, policy, calendar)

        return self._update(ticket.id, at, change)

    def intake_hooks(self) -> IntakeHooks:
        """What `Intake` calls: before its script, each new ticket's first due time; after
        it, for each opened or appended ticket."""
        return IntakeHooks(
            on_opened=self.on_opened,
            on_customer_message=self.on_customer_message,
            on_opened_many=self.on_opened_many,
            first_dues=self.first_dues,
        )
