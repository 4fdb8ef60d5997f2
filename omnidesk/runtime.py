"""The runtime: config, store, normalize, route and intake bundled, so the pipeline, the CLI
and the tests share one way of turning raw payloads into tickets and nothing is hard-wired.

`Runtime.process(batch)` is the body of the dramatiq `ingest` actor: archive each raw
payload, normalize it, route it and intake it. A payload that cannot be normalized or
routed goes to the quarantine whole, with its reason. Store trouble raises StoreUnavailable
(a TransientError) so the caller retries the whole batch; intake is idempotent, so the
retry is harmless.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from omnidesk.agents.csat import consume_inbound as consume_csat
from omnidesk.archive import Archive
from omnidesk.budget import normalize_within
from omnidesk.config import ParseBudget
from omnidesk.configload import LoadedConfig
from omnidesk.errors import PayloadError, PermanentError, TransientError
from omnidesk.intake import Intake, IntakeHooks, IntakeResult
from omnidesk.model import Decision, Inbound, RawPayload, Skipped
from omnidesk.quarantine import Quarantine
from omnidesk.store import Store

log = logging.getLogger("omnidesk.ingest")

# (channel, payload, *, account, received_at)
NormalizeFn = Callable[..., Sequence[Inbound | Skipped]]
RouteFn = Callable[[Inbound], Decision]


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
    clocks: Any = None  # the SLA engine (omnidesk.sweeper.SlaClocks), when built by for_service
    intake: Intake = field(init=False)
    quarantine: Quarantine = field(init=False)

    def __post_init__(self) -> None:
        self.intake = Intake(self.store, hooks=self.hooks)
        self._windows()
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
        cls, config: LoadedConfig, *, store: Store | None = None, notify: Any = None
    ) -> Runtime:
        """What every process that takes messages in runs (daemon, worker, quarantine
        retry): the real runtime with the SLA clocks' intake hooks, so no ticket misses
        its clocks whichever process opened it."""
        from omnidesk.sweeper import SlaClocks

        service = config.data.service
        store = store or Store.from_url(service.redis_url, service.key_prefix)
        clocks = SlaClocks(store, config.data, notify=notify)
        return cls.from_config(config, store=store, hooks=clocks.intake_hooks(), clocks=clocks)

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
        ready: list[tuple[Inbound, Decision]] = []
        try:
            for result in results:
                if isinstance(result, Skipped):
                    self.store.incr(f"skipped:{result.reason}")
                    continue
                if result.meta and consume_csat(self.store, result):
                    continue  # a survey answer (button press): recorded, opens no ticket
                result.raw_ref = raw_ref
                ready.append((result, self.route(result)))
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
        report = BatchReport()
        items: list[tuple[Inbound, Decision]] = []
        # Every payload is archived before anything is taken in (TransientError: the batch is
        # retried, nothing acked). Written inline: the worker's other threads fill the disk
        # waits, and a thread pool here only added GIL hand-offs (measured: more CPU per ticket).
        if self.archive:
            for raw in batch:
                self.archive.put(raw.payload)
        for raw in batch:
            ready = self.prepare(raw, archive=False)
            if ready is None:
                report.quarantined.append(raw.source or raw.sha256)
            else:
                items.extend(ready)
        report.results = self.intake.many(items)
        return report

    def retry_quarantined(self, item_id: str) -> list[IntakeResult]:
        """Re-run normalize, route and intake for one quarantined payload with the current
        code and config; on success the item leaves the quarantine. Raises KeyError for an
        unknown id and PayloadError (the new reason) when it still fails."""
        item = self.quarantine.get(item_id)
        if item is None:
            raise KeyError(item_id)
        ready = self.prepare(item.raw())  # a failure updates the item's reason in place
        if ready is None:
            again = self.quarantine.get(item_id)
            raise PayloadError(again.error if again else "still failing", reason="retry_failed")
        results = self.intake.many(ready)
        self.quarantine.remove(item_id)
        return results
