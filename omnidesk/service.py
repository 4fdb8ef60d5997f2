"""The daemon: an asyncio supervisor over connectors, in-process dramatiq workers,
the SLA sweeper and the HTTP server.

Lifecycle `initialize → start → stop → shutdown`, usable with `async with`.
SIGTERM/SIGINT drain (stop pulling, finish in-flight work within a bound, exit 0);
SIGHUP reloads queue_config.yaml in a thread, keeping the old config when the new one is
invalid: `daemon.reload_hooks` read what the new config names (the guides) in that thread,
before it is in force; the plugins get the accepted one through their `reload` hook.

Kept whole though over 500 lines: the Daemon is one lifecycle whose steps start, reload
and stop the same parts in a fixed order; split, each half would reach into the other's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from aiohttp import web
from dramatiq.brokers.redis import RedisBroker

from connectors.base import Backoff, Connector
from omnidesk import gctune
from omnidesk.api import RouteHook, build_app
from omnidesk.configload import LoadedConfig, load_config
from omnidesk.embedded_redis import EmbeddedRedis
from omnidesk.errors import ConfigError, OmnideskError, StoreFull, StoreUnavailable
from omnidesk.metrics import Metrics, Scrape
from omnidesk.model import RawPayload
from omnidesk.overload import REDIS_DOWN, REDIS_OOM, IntakeGate
from omnidesk.plugins import Plugin, Plugins, discover
from omnidesk.runtime import default_route
from omnidesk.senders import register_connector_sender
from omnidesk.sla.protocol import SlaEngine

log = logging.getLogger("omnidesk.daemon")
HANDOVER_BATCH = 100  # payloads per ingest message (Pipeline.handover's default batch_size)


@dataclass
class DaemonOptions:
    config: str | None = None
    workers: int = 2  # in-process worker threads; 0 for none
    deliver_threads: int = 4  # with workers 0: the threads on `deliver` (the senders are here)
    http: bool = True
    http_port: int | None = None  # default: service.http_port
    embedded_redis: bool = False
    drain_timeout: float = 30.0
    redis_url: str | None = None  # overrides service.redis_url (tests, --embedded-redis)
    key_prefix: str | None = None
    database_url: str | None = None  # overrides service.database_url (the demo's own)
    # The plugins (omnidesk.plugins) this daemon runs; None: every installed one (the
    # `omnidesk.plugins` entry points: reports and agents, and any other package's).
    plugins: list[Plugin] | None = None


def _log_warnings(loaded: LoadedConfig) -> None:
    """What `omnidesk check` would warn about (a rule test skipped for want of its sample
    file, a rule that can never match) goes to the log: the daemon starts all the same."""
    for warning in loaded.warnings:
        log.warning("config: %s", warning)


class Daemon:
    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        self.loaded: LoadedConfig = load_config(options.config)
        _log_warnings(self.loaded)
        self.metrics = Metrics()
        self.connectors: list[Connector] = []
        self.route_hooks: list[RouteHook] = []
        self.background: list[Callable[[asyncio.Event], Any]] = []  # coroutines run until stop
        # Parts that read what a new config names (the guides) get it here, in the reload's
        # thread, before it is in force; plugins get the accepted config through `reload`.
        self.reload_hooks: list[Callable[[LoadedConfig], None]] = []
        self._reloading: asyncio.Task[None] | None = None
        self._reload_again = False
        self.plugins = Plugins(discover() if options.plugins is None else options.plugins)
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()
        self._embedded: EmbeddedRedis | None = None
        self._worker: Any = None
        self._runner: web.AppRunner | None = None
        self.runtime: Any = None
        self.clocks: SlaEngine | None = None
        self._aioredis: Any = None
        self.pipeline: Any = None
        self.gate: IntakeGate | None = None  # overload: 503/backpressure; set by initialize
        self.agents: Any = None  # omnidesk.agents.service.AgentService, set by its plugin
        self.records: Any = None  # omnidesk.db.records.Records: PostgreSQL, set by initialize
        self.writer: Any = None  # omnidesk.db.writer.RecordWriter: the events stream -> PG
        self.http_port: int | None = None
        self.started_at = time.time()

    # ------------------------------------------------------------ lifecycle

    async def initialize(self) -> None:
        import redis.asyncio as aioredis

        from connectors.catalog import build
        from connectors.state import CursorStore, Lease
        from omnidesk.db.records import Records
        from omnidesk.db.writer import RecordWriter
        from omnidesk.pipeline import Pipeline, make_broker, queue_name
        from omnidesk.runtime import Runtime
        from omnidesk.store import Store

        service = self.loaded.data.service
        self.records = (
            Records(self.options.database_url)
            if self.options.database_url
            else Records.for_service(service)
        )
        redis_url = self.options.redis_url or service.redis_url
        prefix = self.options.key_prefix or service.key_prefix
        if self.options.embedded_redis and not await _redis_answers(redis_url):
            self._embedded = EmbeddedRedis(Path(service.state_dir))
            redis_url = await self._embedded.start()
            log.info("started an embedded redis-server at %s", redis_url)
        store = Store.from_url(redis_url, prefix)
        await self._wait_for_redis(store, redis_url)
        if advice := await asyncio.to_thread(store.listpack_advice):
            log.warning("%s", advice)
        self.runtime = Runtime.for_service(
            self.loaded, store=store, notify=self._notify, records=self.records
        )
        self.writer = RecordWriter(store, self.records.info)
        self.background.append(self.writer.run)
        clocks: SlaEngine = self.runtime.clocks  # Runtime.for_service builds one
        self.clocks = clocks
        self.background.append(clocks.run_sweeper)
        self.background.append(clocks.run_repair)  # clocks a hook missed
        broker_url = service.broker_url or redis_url
        broker = make_broker(
            broker_url,
            prefix,
            heartbeat_timeout_ms=int(service.broker_heartbeat_s * 1000),
            maintenance_interval_ms=int(service.broker_maintenance_s * 1000),
        )
        self.pipeline = Pipeline(self.runtime, broker)
        self.gate = IntakeGate.for_broker(
            self.pipeline.broker,
            broker_url,
            queue_name(self.pipeline.broker, "ingest"),
            max_backlog=service.intake_max_backlog,
            retry_after=service.intake_retry_after_s,
            registry=self.metrics.registry,
        )
        self._aioredis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        cursors = CursorStore(self._aioredis, prefix)

        def lease_for(name: str, ttl: float) -> Lease:
            return Lease(self._aioredis, prefix, name, ttl=ttl)

        self.connectors = [
            build(entry, cursors=cursors, lease_for=lease_for)
            for entry in self.loaded.data.connectors
        ]
        loop = asyncio.get_running_loop()
        for connector in self.connectors:
            await connector.initialize()
            register_connector_sender(connector, loop)
            add_routes = getattr(connector, "add_routes", None)
            if add_routes is not None:
                self.route_hooks.append(add_routes)
        self.runtime.batch_timer = self.metrics.routing_latency.time
        self.runtime.intake.hooks.after_opened = self.plugins.tickets_opened
        self.plugins.attach(self)

    async def start(self) -> None:
        if self.options.workers > 0:
            self._worker = self.pipeline.start_worker(self.options.workers)
        else:  # intake runs in `omnidesk worker`s; replies need this daemon's connectors
            self._worker = self.pipeline.start_worker(
                self.options.deliver_threads, queues=["deliver"]
            )
        for connector in self.connectors:
            self._tasks.append(
                asyncio.create_task(
                    connector.start(DaemonSink(self)), name=f"connector:{connector.name}"
                )
            )
        for job in self.background:
            self._tasks.append(asyncio.create_task(job(self._stop)))
        if self.options.http:
            await self._start_http()
        if self.gate is not None:  # a first probe: a Redis that may evict is logged now
            await self.gate.pressure()
        log.info(
            "omnidesk running: %d connectors, %d worker threads, http port %s",
            len(self.connectors),
            self.options.workers,
            self.http_port,
        )

    async def stop(self) -> None:
        """Stop pulling, let in-flight work finish within the drain bound."""
        self._stop.set()
        deadline = time.monotonic() + self.options.drain_timeout
        for connector in self.connectors:
            await connector.stop()
        if self._tasks:
            _, pending = await asyncio.wait(
                self._tasks, timeout=max(0.1, deadline - time.monotonic())
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._worker is not None:
            remaining_ms = int(max(0.1, deadline - time.monotonic()) * 1000)
            # Messages not yet started stay in the broker; in-flight ones finish or are re-queued.
            await asyncio.to_thread(self._worker.stop, remaining_ms)
            self._worker = None

    async def shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for connector in self.connectors:
            await connector.shutdown()
        if self.pipeline is not None:
            with contextlib.suppress(Exception):
                self.pipeline.broker.close()
        if self._aioredis is not None:
            with contextlib.suppress(Exception):
                await self._aioredis.aclose()
        if self.gate is not None:
            with contextlib.suppress(Exception):
                await self.gate.close()
        if self.records is not None:
            self.records.close()
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    async def __aenter__(self) -> Self:
        await self.initialize()
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        await self.shutdown()

    async def run_until_signalled(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_in_background)
        await self._stop.wait()
        log.info("stopping: draining for at most %.0fs", self.options.drain_timeout)
        return 0

    def request_stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------ the parts

    async def admit(self, *, count: bool = True) -> None:
        """Raise Overloaded (a TransientError with Retry-After) while intake must wait."""
        if self.gate is not None:
            await self.gate.admit(count=count)

    async def handover(self, items: list[RawPayload]) -> None:
        """The connectors' sink: one dramatiq `ingest` message per batch. Under overload it
        raises Overloaded before sending, so connectors back off and keep their cursors."""
        await self.admit()
        try:
            await self.pipeline.handover(items)
        except StoreFull:
            raise self._refused(REDIS_OOM) from None
        except StoreUnavailable:
            raise self._refused(REDIS_DOWN) from None
        if self.gate is not None:
            self.gate.sent(-(-len(items) // HANDOVER_BATCH))

    async def intake_now(self, items: list[RawPayload]) -> Any:
        """Take payloads in within the callers' requests (the web form answers with the
        ticket number): `Runtime.process` in a thread, past the same overload gate as the
        hand-over. Returns its BatchReport."""
        await self.admit()
        try:
            return await asyncio.to_thread(self.runtime.process, items)
        except StoreUnavailable as exc:
            raise self.store_refused(exc) from None

    def store_refused(self, exc: StoreUnavailable) -> OmnideskError:
        """Redis failing under a request: the gate's refusal (Retry-After), counted as
        redis_oom or redis_down, so /healthz and /metrics say why."""
        if self.gate is None:
            return exc
        return self._refused(REDIS_OOM if isinstance(exc, StoreFull) else REDIS_DOWN)

    def _refused(self, reason: str) -> OmnideskError:
        assert self.gate is not None
        self.gate.saw_failure(reason)
        return self.gate.refuse(reason)

    def reload(self) -> None:
        """Load and compile the new config and put it in force; on any error keep the old
        one. SIGHUP does the same with the reading in a thread (`_reload_in_background`)."""
        prepared = self._prepare_reload()
        if prepared is not None:
            self._put_in_force(*prepared)

    def _reload_in_background(self) -> None:
        """The SIGHUP handler: the config, its rules and the guides it names are read and
        compiled in a thread (a large config or a few hundred guides take a second the
        event loop cannot spare), then put in force on the loop. A SIGHUP during a reload
        runs one more after it, so the last edit always wins."""
        if self._reloading is not None and not self._reloading.done():
            self._reload_again = True
            return
        self._reloading = asyncio.get_running_loop().create_task(self._reload_off_loop())

    async def _reload_off_loop(self) -> None:
        again = True
        while again:
            self._reload_again = False
            try:
                prepared = await asyncio.to_thread(self._prepare_reload)
                if prepared is not None:
                    self._put_in_force(*prepared)
            except Exception:  # a bug, not a bad config: the old config stays, said at once
                log.exception("reload failed; the config in force stays")
            again = self._reload_again

    def _prepare_reload(self) -> tuple[LoadedConfig, Any] | None:
        """The new config, checked, with its compiled router; None (logged) when refused.
        The reload hooks read what it names here too."""
        try:
            new = load_config(self.options.config)
            route = default_route(new)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused: %s", problem)
            return None
        except OmnideskError as exc:
            log.error("reload refused: %s", exc)
            return None
        for hook in list(self.reload_hooks):
            try:
                hook(new)
            except Exception:  # that part keeps its old config; the others move on
                log.exception("reload hook %s failed", getattr(hook, "__qualname__", hook))
        return new, route

    def _put_in_force(self, new: LoadedConfig, route: Any) -> None:
        try:
            self.runtime.reload(new, route)
            if self.clocks is not None:
                self.clocks.reload(new.data)
        except OmnideskError as exc:
            log.error("reload refused: %s", exc)
            return
        self.loaded = new
        _log_warnings(new)
        self.plugins.reload(new)
        gctune.refreeze()  # the old config, frozen at start-up, may now be collected
        log.info("reloaded %s: %d rules", new.path, len(new.data.rules))

    def _notify(self, event: dict[str, Any]) -> None:
        """An SLA ladder's notify action, sent through the dramatiq `notify` actor."""
        self.pipeline.notify.send(event["ticket"], event["target"], event["text"], event["via"])

    async def health(self) -> dict[str, Any]:
        store = self.runtime.store
        redis_ok = await asyncio.to_thread(_ping, store)
        statuses = [c.status.as_dict() for c in self.connectors]
        ok = redis_ok and not any(s["state"] == "auth_error" for s in statuses)
        pressure = await self.gate.pressure() if self.gate is not None else None
        report: dict[str, Any] = {  # the /healthz JSON
            "ok": ok,
            "redis": redis_ok,
            "broker": redis_ok
            if self.pipeline and _broker_is_redis(self.pipeline.broker)
            else _broker_ok(self.pipeline),
            "workers": self.options.workers if self._worker is not None else 0,
            "queues": pressure.queues if pressure else {},
            "connectors": statuses,
            "config": str(self.loaded.path),
            "uptime_s": round(time.time() - self.started_at, 1),
        }
        # Overload (issue 12): status ok/degraded with the reason, and the ingest backlog.
        if pressure is not None:
            report.update(pressure.health())
            report["ok"] = ok and pressure.reason not in (REDIS_OOM, REDIS_DOWN)
        if self.writer is not None:  # PostgreSQL away: intake goes on, the backlog grows
            state = self.writer.state
            report["records"] = {
                "ok": state.up,
                "backlog": state.backlog,
                "written": state.written,
                "set_aside": state.failed,  # entries that could not be written (see logs)
                "error": state.error,
            }
            if state.up is False:
                report["status"] = "degraded"
                report["degraded"] = [*report.get("degraded", []), "postgresql_down"]
        scheduler = getattr(self, "report_scheduler", None)  # set by the reports plugin
        if scheduler is not None and (mail := scheduler.health()) is not None:
            report["reports"] = mail  # intake goes on; only the report mail waits
            if mail["mail"] == "down":
                report["status"] = "degraded"
                report["degraded"] = [*report.get("degraded", []), "report_mail_down"]
            if mail.get("pdf") == "down":  # PDF reports cannot be printed: not sent
                report["status"] = "degraded"
                report["degraded"] = [*report.get("degraded", []), "report_pdf_down"]
        return report

    async def render_metrics(self) -> bytes:
        """Read every figure for this scrape; what could not be read is left out."""
        store = self.runtime.store
        scrape = Scrape()
        try:
            counts = await asyncio.to_thread(store.counts)
            scrape.update_store(counts)
            if self.clocks is not None:
                scrape.update_sla(await asyncio.to_thread(self.clocks.counts))
            scrape.update_dependency("redis", True)
        except OmnideskError:
            scrape.update_dependency("redis", False)
        scrape.update_connectors(c.status for c in self.connectors)
        if self.writer is not None:
            state = self.writer.state
            scrape.update_records(state.up, state.backlog, state.written)
        if self.gate is not None:  # broker figures and omnidesk_intake_backlog (cached probe)
            scrape.update_broker((await self.gate.pressure()).queues)
        return self.metrics.render(scrape)

    # ------------------------------------------------------------ internals

    async def _wait_for_redis(self, store: Any, url: str) -> None:
        """Redis down at start: a clear line, retries with backoff, no crash loop."""
        backoff = Backoff(base=0.5, cap=30.0)
        while not await asyncio.to_thread(_ping, store):
            delay = backoff.next()
            log.error("redis unreachable at %s; retrying in %.1fs", _safe_url(url), delay)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
                raise StoreUnavailable(f"redis unreachable at {_safe_url(url)}; stopped")
            except TimeoutError:
                continue

    async def _start_http(self) -> None:
        from omnidesk import status_api, webform
        from omnidesk.guides import pages as guide_pages

        service = self.loaded.data.service
        app = build_app(
            self,
            max_body=self.loaded.data.limits.max_raw_bytes + 64 * 1024,
            hooks=[
                webform.add_routes,
                status_api.add_routes,
                guide_pages.add_routes,
                *self.route_hooks,
            ],
            web_max_body=service.web_max_body_bytes,
            body_timeout=service.http_body_timeout_s,
            registry=self.metrics.registry,
        )
        # keepalive_timeout also runs from the connection's start until its headers are
        # complete, so a client that trickles its headers is dropped after it (aiohttp).
        self._runner = web.AppRunner(
            app,
            access_log=None,
            keepalive_timeout=service.http_keepalive_timeout_s,
            lingering_time=min(5.0, service.http_body_timeout_s),
        )
        await self._runner.setup()
        port = self.options.http_port if self.options.http_port is not None else service.http_port
        site = web.TCPSite(self._runner, service.http_host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else port


@dataclass(frozen=True)
class DaemonSink:
    """The connectors' sink: the daemon's hand-over, with `admit()` as the reconnect loop's
    backpressure check before each pull (connectors/base.py)."""

    daemon: Daemon

    async def __call__(self, items: list[RawPayload]) -> None:
        await self.daemon.handover(items)

    async def admit(self) -> None:
        await self.daemon.admit(count=False)


def _ping(store: Any) -> bool:
    try:
        return bool(store.ping())
    except Exception:
        return False


async def _redis_answers(url: str) -> bool:
    import redis

    def ping() -> bool:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=1)
            return bool(client.ping())
        except Exception:
            return False

    return await asyncio.to_thread(ping)


def _broker_is_redis(broker: Any) -> bool:
    return isinstance(broker, RedisBroker)  # omnidesk.redisbroker's is a subclass


def _broker_ok(pipeline: Any) -> bool:
    if pipeline is None:
        return False
    try:
        pipeline.broker.get_declared_queues()
        return True
    except Exception:
        return False


def _safe_url(url: str) -> str:
    """A URL for logs: the password part is never printed."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
