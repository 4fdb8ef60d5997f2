"""The automatic answer a rule's `then.answer_with_guide` gives: a new Telegram or WhatsApp
ticket whose question a public guide answers well gets that guide's excerpt and link at
once, labelled as an automatic answer, in the customer's language.

The ticket stays open: the answer is an automatic message (event ``guide_answered``,
omnidesk.outbound.send_automatic_many, the path receipts take to `deliver`), so it stops no
SLA clock and counts as no agent's reply; if the customer writes again, their message comes
into the same ticket (its chat is the thread key) and an agent takes it from there.

Only a guide scoring at least `guides.answer_min_score` answers: a greeting or a vague
question gets nothing rather than a wrong guide. Each ticket is answered at most once (a
`guide_answer` field on the ticket, set with HSETNX before sending), so a batch run again
sends nothing twice. A ticket whose first run died before its answer gets none on the
redelivery (intake calls it a duplicate then): it is still open for an agent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omnidesk.events import EventType
from omnidesk.guides.library import GuideLibrary, library_for
from omnidesk.guides.loader import Guide
from omnidesk.guides.render import excerpt
from omnidesk.i18n import N_, translator
from omnidesk.intake import IntakeResult
from omnidesk.model import Channel, Decision, Inbound, Ticket
from omnidesk.outbound import Automatic, BatchTickets, SendReplies, send_automatic_many
from omnidesk.store import Store
from omnidesk.templates import reply_language

if TYPE_CHECKING:
    from omnidesk.configload import LoadedConfig

log = logging.getLogger("omnidesk.guides.answers")

EVENT = EventType.GUIDE_ANSWERED
CHANNELS = frozenset({Channel.TELEGRAM, Channel.WHATSAPP})
CLAIM_FIELD = "guide_answer"  # on the ticket hash: the slug of the guide it was answered with
EXCERPT_CHARS = 500
LABEL = N_("Automatic answer")
READ_MORE = N_("Read the full guide: {url}")
HUMAN_NEXT = N_(
    "If this does not answer your question, reply here and one of our staff will follow up."
)


def answering_rules(loaded: LoadedConfig) -> frozenset[str]:
    return frozenset(r.id for r in loaded.data.rules if r.then.answer_with_guide)


def compose(library: GuideLibrary, guide: Guide, language: str) -> str:
    """The message: the label, the guide's title and opening, its link, and that a person
    follows up if the customer replies; in `language`."""
    tr = translator(language)
    return "\n\n".join(
        [
            f"{tr._(LABEL)}: {guide.meta.title}",
            excerpt(guide.body, EXCERPT_CHARS),
            tr._(READ_MORE).format(url=library.url(guide)),
            tr._(HUMAN_NEXT),
        ]
    )


@dataclass
class GuideAnswers:
    store: Store
    loaded: LoadedConfig
    send_replies: SendReplies

    def after_intake(
        self,
        items: Sequence[tuple[Inbound, Decision]],
        results: Sequence[IntakeResult],
        batch_tickets: BatchTickets | None = None,
    ) -> list[str]:
        """Answer the batch's new chat tickets a rule asked a guide for; returns their ids.
        `batch_tickets`: the batch's tickets, when the receipts read them already."""
        rules = answering_rules(self.loaded)
        if not rules:
            return []
        wanted = [
            (inbound, result.ticket_id)
            for (inbound, decision), result in zip(items, results, strict=True)
            if result.outcome == "opened" and result.ticket_id
            and inbound.channel in CHANNELS and not inbound.is_machine_mail
            and not rules.isdisjoint(decision.rules)
        ]  # fmt: skip
        if not wanted:
            return []
        library = library_for(self.loaded)
        if not library.guides:  # nothing could answer: no guide text is searched
            return []
        if batch_tickets is None:
            batch_tickets = BatchTickets(self.store)
        tickets = batch_tickets.get([tid for _, tid in wanted])
        ready: list[Automatic] = []
        for inbound, tid in wanted:
            ticket = tickets.get(tid)
            guide = self._best(library, inbound, ticket) if ticket is not None else None
            if ticket is None or guide is None or not self._claim(ticket, guide):
                continue
            language = reply_language(ticket.language)
            meta = {"guide": guide.slug, "last_customer_at": ticket.created_at.isoformat()}
            ready.append(Automatic(ticket, compose(library, guide, language), None, meta))
        if not ready:
            return []
        sent: list[str] = []
        send_automatic_many(self.store, self.send_replies, ready, event=EVENT, queued=sent)
        self.store.incr("guide_answers", len(sent))
        return sent

    @staticmethod
    def _best(library: GuideLibrary, inbound: Inbound, ticket: Ticket) -> Guide | None:
        """The public guide that answers the question, in the ticket's reply language, when
        it scores high enough."""
        language = reply_language(ticket.language)
        text = f"{inbound.subject} {inbound.text}"
        hits = library.index.search(text, limit=1, lang=language, public_only=True)
        if not hits or hits[0].score < library.answer_min_score:
            return None
        return hits[0].guide

    def _claim(self, ticket: Ticket, guide: Guide) -> bool:
        """Once per ticket: True for the first caller only."""
        key = self.store.keys.ticket(ticket.id)
        return bool(self.store.r.hsetnx(key, CLAIM_FIELD, guide.slug))
