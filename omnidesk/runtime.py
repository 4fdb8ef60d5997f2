"""The runtime: config, store, normalize, route and intake bundled, so the pipeline, the CLI
and the tests share one way of turning raw payloads into tickets and nothing is hard-wired.

`Runtime.process(batch)` is the body of the dramatiq `ingest` actor: archive each raw
payload, normalize it, find who sent it and whether it is on record already
(omnidesk.known: one Redis round trip for the batch, PostgreSQL only for what Redis has
let go), route it with the customer's tags, segment and region, and intake it. A payload
that cannot be normalized or routed goes to the quarantine whole, with its reason. Store
trouble raises StoreUnavailable (a TransientError) so the caller retries the whole batch;
intake is idempotent, so the retry is harmless. PostgreSQL trouble is never the batch's:
the lookup falls back to what Redis knows.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import msgspec

from omnidesk.archive import Archive
from omnidesk.budget import normalize_within
from omnidesk.config import ParseBudget
from omnidesk.configload import LoadedConfig
from omnidesk.csat_answers import consume_inbound as consume_csat
from omnidesk.errors import PayloadError, PermanentError, TransientError
from omnidesk.intake import Intake, IntakeHooks, IntakeResult, is_transient
from omnidesk.known import Known, KnownLookup
from omnidesk.model import UPLOADED, Channel, Decision, Inbound, Outbound, RawPayload, Skipped
from omnidesk.outbound import BatchTickets
from omnidesk.quarantine import Quarantine
from omnidesk.receipts import Receipts
from omnidesk.sla.protocol import SlaEngine
from omnidesk.store import Store

log = logging.getLogger("omnidesk.ingest")

# (channel, payload, *, account, received_at)
NormalizeFn = Callable[..., Sequence[Inbound | Skipped]]
# (inbound) or (inbound, customer=...) when the sender is a known customer
RouteFn = Callable[..., Decision]


def default_normalize() -> NormalizeFn:
    from connectors.registry import normalize

    return normalize


def default_route(loaded: LoadedConfig) -> RouteFn:
    """The service's routing step (router + business-hours calendar) from the config. The
    trace of rules tried is left out: nothing stores it, and `omnidesk route` shows it."""
    from omnidesk.routing import Routing

    return partial(Routing.from_config(loaded).decide, trace=False)


@dataclass
class BatchReport:
    """What one batch came to; `results` are in payload order, quarantined ones left out."""

    results: list[IntakeResult] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(r.outcome for r in self.results)


@dataclass
class Runtime:
    store: Store
    route: RouteFn
    normalize: NormalizeFn
    archive: Archive | None = None
    config: LoadedConfig | None = None
    hooks: IntakeHooks = field(default_factory=IntakeHooks)
    clocks: SlaEngine | None = None  # omnidesk.sla.engine.SlaClocks, when built by for_service
    # PostgreSQL (omnidesk.db.records.Records): customers and messages Redis let go. None:
    # Redis alone (offline routing, tests), as when PostgreSQL is down.
    records: Any = None
    # Queues outbound messages for `deliver` (the pipeline's send_replies; Pipeline sets it):
    # with it, new tickets get the receipts their rules name (omnidesk.receipts) and status
    # requests their answers (omnidesk.status_replies).
    send_replies: Callable[[list[Outbound]], None] | None = None
    # Times each `process` call (the daemon's routing-latency histogram's `time`).
    batch_timer: Callable[[], AbstractContextManager[Any]] = nullcontext
    intake: Intake = field(init=False)
    quarantine: Quarantine = field(init=False)
    known: KnownLookup = field(init=False)

    def __post_init__(self) -> None:
        self.intake = Intake(self.store, hooks=self.hooks)
        self._windows()
        self.known = KnownLookup(self.store, self.records)
        limits = self.config.data.service.quarantine if self.config else None
        self.quarantine = Quarantine(self.store, limits, archive=self.archive)

    @classmethod
    def from_config(
        cls,
        config: LoadedConfig,
        *,
        route: RouteFn | None = None,
        normalize: NormalizeFn | None = None,
        store: Store | None = None,
        **kwargs: Any,
    ) -> Runtime:
        """The real thing: Redis and state dir from `config.service`, the real router and
        normalizers unless others are given."""
        service = config.data.service
        return cls(
            store=store or Store.from_url(service.redis_url, service.key_prefix),
            route=route or default_route(config),
            normalize=normalize or default_normalize(),
            archive=Archive(service.state_dir),
            config=config,
            **kwargs,
        )

    @classmethod
    def for_service(
        cls,
        config: LoadedConfig,
        *,
        store: Store | None = None,
        notify: Any = None,
        records: Any = None,
    ) -> Runtime:
        """What every process that takes messages in runs (daemon, worker, quarantine
        retry): the real runtime with the SLA clocks' intake hooks, so no ticket misses
        its clocks whichever process opened it, and PostgreSQL (`records`, else one from
        `service.database_url`) behind Redis for customers and messages Redis let go."""
        from omnidesk.db.records import Records
        from omnidesk.sla.engine import SlaClocks

        service = config.data.service
        store = store or Store.from_url(service.redis_url, service.key_prefix)
        clocks = SlaClocks(store, config.data, notify=notify)
        records = records if records is not None else Records.for_service(service)
        return cls.from_config(
            config, store=store, hooks=clocks.intake_hooks(), clocks=clocks, records=records
        )

    def reload(self, config: LoadedConfig, route: RouteFn | None = None) -> None:
        """Swap in a new config (SIGHUP): the router is compiled first, so a bad one raises
        and the old stays."""
        new_route = route or default_route(config)
        self.config, self.route = config, new_route
        self._windows()

    def _windows(self) -> None:
        """Intake's reopen and dedupe windows from `service` (when there is a config)."""
        if self.config is not None:
            service = self.config.data.service
            self.intake.reopen_window = timedelta(days=service.reopen_window_days)
            self.intake.dedupe_window = timedelta(days=service.dedupe_window_days)

    def prepare(
        self, raw: RawPayload, *, archive: bool = True
    ) -> list[tuple[Inbound, Decision]] | None:
        """Archive, normalize and route one payload; None when it went to the quarantine."""
        inbounds = self.read(raw, archive=archive)
        if inbounds is None:
            return None
        return self.route_all(raw, inbounds, self.known.look(inbounds))

    def read(self, raw: RawPayload, *, archive: bool = True) -> list[Inbound] | None:
        """Archive and normalize one payload: its customer messages, survey answers and
        skipped items taken out; None when it went to the quarantine."""
        raw_ref = self.archive.put(raw.payload) if self.archive and archive else raw.sha256
        try:
            budget = self.config.data.service.parse if self.config else ParseBudget()
            normalize = partial(self.normalize, received_at=raw.received_at)
            results = normalize_within(
                normalize, raw.channel, raw.payload, account=raw.account, budget=budget
            )
        except PayloadError as exc:
            self._quarantine(raw, exc.reason, str(exc))
            return None
        except TransientError:
            raise
        except PermanentError as exc:  # unknown channel, normalizer not installed
            self._quarantine(raw, "unsupported", str(exc))
            return None
        except Exception as exc:  # a normalizer bug: keep the payload, do not crash
            self._quarantine(raw, "normalizer_error", f"{type(exc).__name__}: {exc}")
            return None
        inbounds: list[Inbound] = []
        receipts: list[dict[str, Any]] = []
        for result in results:
            if isinstance(result, Skipped):
                if result.reason == "delivery_status" and result.receipt:
                    receipts.append(result.receipt)  # counted below unless it is one of ours
                    continue
                self.store.incr(f"skipped:{result.reason}")
                continue
            if result.meta and consume_csat(self.store, result):
                continue  # a survey answer (button press): recorded, opens no ticket
            if self._status_request(result):
                continue  # "OD-2026-000123" alone: answered with its status, opens nothing
            result.raw_ref = raw_ref
            if raw.uploads:
                mark_uploaded(result, raw.uploads)
            inbounds.append(result)
        if receipts:
            self._delivery_receipts(Channel(raw.channel).value, receipts)
        return inbounds

    def _delivery_receipts(self, channel: str, receipts: list[dict[str, Any]]) -> None:
        """A channel's statuses for messages we sent (WhatsApp's delivered, read, failed)
        onto those messages (`channel_delivery`), never moving one back (Store.set_deliveries).
        One for a message we do not know (sent by another system, or long ago, or gone from
        Redis) is counted as `skipped:delivery_status`, as is one saying nothing new (`sent`);
        the first kind is held a while (Store.hold_early) in case its send is not noted yet."""
        said = [(str(r.get("message_id") or ""), channel_delivery(r)) for r in receipts]
        ours = self.store.sent_messages(channel, [e for e, status in said if e and status])
        statuses: list[tuple[str, str]] = []
        early: list[tuple[str, str]] = []
        for external_id, status in said:
            message_id = ours.get(external_id)
            if status is None or message_id is None:
                self.store.incr("skipped:delivery_status")
            if status is not None and message_id is not None:
                statuses.append((message_id, status))
            elif status is not None and external_id:  # not ours, or its send not noted yet
                early.append((external_id, status))
        if early:
            self.store.hold_early(channel, early)
        if statuses:  # a message gone from Redis meanwhile (evicted, erased) takes none
            gone = self.store.set_deliveries(statuses, actor=channel)
            if gone:
                self.store.incr("skipped:delivery_status", len(gone))

    def _status_request(self, inbound: Inbound) -> bool:
        """True when `inbound` only asks for a ticket's status (omnidesk.status_replies),
        where this process can answer (it has the pipeline's send_replies). A request on the
        sender's own open ticket is answered and still taken in there (False), threaded by
        the ticket's own key, so an agent who asked for the number sees it."""
        if self.send_replies is None or self.config is None:
            return False
        from omnidesk.status_replies import StatusReplies

        replies = StatusReplies(
            self.store, self.config.data, self.send_replies, self.records, self.intake.dedupe_window
        )
        try:
            handled = replies.consume(inbound)
        except Exception as exc:
            if is_transient(exc):
                raise
            # a bug here must not lose the message: it goes on as an ordinary one
            log.exception("status request of %s failed: %s", inbound.dedupe_key, exc)
            self.store.incr("status_requests:failed")
            return False
        if handled is None:
            return False
        if handled.keep_on is not None:
            inbound.thread_keys = [f"ticket:{handled.keep_on}", *inbound.thread_keys]
            return False
        return True

    def route_all(
        self, raw: RawPayload, inbounds: list[Inbound], known: Known
    ) -> list[tuple[Inbound, Decision]] | None:
        """Route one payload's messages, each with its customer when one is known. A
        message PostgreSQL already records is not routed: `process` reports it as the
        duplicate it is. None when the payload went to the quarantine."""
        ready: list[tuple[Inbound, Decision]] = []
        try:
            for inbound in inbounds:
                if known.duplicate(inbound) is not None:
                    continue
                customer = known.customer_for(inbound)
                if customer is None:
                    decision = self.route(inbound)
                else:
                    decision = self.route(inbound, customer=customer)
                ready.append((inbound, decision))
        except TransientError:
            raise
        except Exception as exc:  # a routing bug or config gap: keep it for a retry
            self._quarantine(raw, "route_error", f"{type(exc).__name__}: {exc}")
            return None
        return ready

    def _quarantine(self, raw: RawPayload, reason: str, error: str) -> None:
        qid = self.quarantine.put(raw, reason, error)
        log.warning("quarantined %s (%s): %s", qid, raw.source or raw.channel, error)

    def process(self, batch: list[RawPayload]) -> BatchReport:
        """Turn a batch of raw payloads into tickets (the `ingest` actor's body)."""
        with self.batch_timer():
            return self._process(batch)

    def _process(self, batch: list[RawPayload]) -> BatchReport:
        report = BatchReport()
        # Every payload is archived before anything is taken in (TransientError: the batch is
        # retried, nothing acked). Written inline: the worker's other threads fill the disk
        # waits, and a thread pool here only added GIL hand-offs (measured: more CPU per ticket).
        if self.archive:
            for raw in batch:
                self.archive.put(raw.payload)
        read: list[tuple[RawPayload, list[Inbound]]] = []
        for raw in batch:
            inbounds = self.read(raw, archive=False)
            if inbounds is None:
                report.quarantined.append(raw.source or raw.sha256)
            else:
                read.append((raw, inbounds))
        # who sent them and what is on record already: once for the whole batch
        known = self.known.look([i for _, inbounds in read for i in inbounds])
        items: list[tuple[Inbound, Decision]] = []
        ordered: list[Inbound] = []  # payload order, PostgreSQL's duplicates included
        for raw, inbounds in read:
            ready = self.route_all(raw, inbounds, known)
            if ready is None:
                report.quarantined.append(raw.source or raw.sha256)
                continue
            items.extend(ready)
            ordered.extend(inbounds)
        taken = self.intake.many(items)
        self._receipts(items, taken)
        report.results = self._merge(ordered, known, taken)
        return report

    def _receipts(self, items: list[tuple[Inbound, Decision]], taken: list[IntakeResult]) -> None:
        """The receipts the batch's new tickets are owed, where this process can send."""
        if self.send_replies is None or self.config is None:
            return
        receipts = Receipts(self.store, self.config.data, self.send_replies, self.clocks)
        batch_tickets = BatchTickets.of_intake(self.store, taken)
        try:
            receipts.after_intake(items, taken, batch_tickets)
        except Exception as exc:
            if is_transient(exc):
                raise  # the batch runs again; its receipts are claimed once (receipts.py)
            # the batch is in: a receipt's bug must not make it fail for ever
            log.exception("receipts of a batch failed: %s", exc)
            self.store.incr("receipts_failed")
        self._guide_answers(items, taken, batch_tickets)

    def _guide_answers(
        self,
        items: list[tuple[Inbound, Decision]],
        taken: list[IntakeResult],
        batch_tickets: BatchTickets,
    ) -> None:
        """The automatic answers with a guide that rules ask for (omnidesk.guides.answers).
        Never the batch's failure: running it again would not answer (its tickets are then
        duplicates), and each ticket stays open for an agent."""
        if self.send_replies is None or self.config is None:
            return
        from omnidesk.guides.answers import GuideAnswers

        try:
            GuideAnswers(self.store, self.config, self.send_replies).after_intake(
                items, taken, batch_tickets
            )
        except Exception as exc:
            log.exception("guide answers of a batch failed: %s", exc)
            self.store.incr("guide_answers_failed")

    @staticmethod
    def _merge(
        ordered: list[Inbound], known: Known, taken: list[IntakeResult]
    ) -> list[IntakeResult]:
        """Intake's results with PostgreSQL's duplicates put back in their places."""
        rest = iter(taken)
        return [known.duplicate(inbound) or next(rest) for inbound in ordered]

    def retry_quarantined(self, item_id: str) -> list[IntakeResult]:
        """Re-run normalize, route and intake for one quarantined payload with the current
        code and config; on success the item leaves the quarantine. Raises KeyError for an
        unknown id and PayloadError (the new reason) when it still fails."""
        item = self.quarantine.get(item_id)
        if item is None:
            raise KeyError(item_id)
        raw = item.raw()
        inbounds = self.read(raw)  # a failure updates the item's reason in place
        known = self.known.look(inbounds or [])
        ready = self.route_all(raw, inbounds, known) if inbounds is not None else None
        if ready is None:
            again = self.quarantine.get(item_id)
            raise PayloadError(again.error if again else "still failing", reason="retry_failed")
        taken = self.intake.many(ready)
        self._receipts(ready, taken)
        results = self._merge(inbounds or [], known, taken)
        self.quarantine.remove(item_id)
        return results


def channel_delivery(receipt: dict[str, Any]) -> str | None:
    """What a channel's status for a sent message records: ``delivered``, ``read`` or
    ``failed: <error title> (<code>)`` (WhatsApp's `errors`); None for one that adds nothing
    (``sent``: the send's own receipt said so) or that we do not know."""
    word = str(receipt.get("status") or "").strip().lower()
    if word in ("delivered", "read"):
        return word
    if word != "failed":
        return None
    reasons = []
    for error in receipt.get("errors") or []:
        if not isinstance(error, dict):
            continue
        title, code = str(error.get("title") or "").strip(), error.get("code")
        code_text = "" if code is None else str(code)
        reasons.append(f"{title} ({code_text})" if title and code_text else title or code_text)
    return f"failed: {'; '.join(r for r in reasons if r) or 'the channel gave no reason'}"


def mark_uploaded(inbound: Inbound, uploads: Sequence[str]) -> None:
    """Mark the attachments whose bytes came with the post itself (`RawPayload.uploads`, set
    by the web form's handler) as UPLOADED: only those are served to agents. A sha256 the
    form merely lists may be anyone's file in the archive."""
    carried = set(uploads)
    inbound.attachments = [
        msgspec.structs.replace(att, kind=UPLOADED) if att.sha256 in carried else att
        for att in inbound.attachments
    ]
