"""Wires reports into the daemon: the rollup consumer, the report scheduler and the eviction
pass (omnidesk.archive_job) as background jobs, the dashboard as routes. `install(daemon)` is
a daemon plugin (omnidesk.service); a SIGHUP reload reaches them through
`daemon.reload_hooks` (the archive pass reads `daemon.loaded` each round)."""

from __future__ import annotations

from typing import Any


def install(daemon: Any) -> None:
    from omnidesk.archive_job import ArchiveJob
    from omnidesk.reports.dashboard import Dashboard, route_hook
    from omnidesk.reports.fold import Context
    from omnidesk.reports.rollup import Rollups
    from omnidesk.reports.schedule import ReportScheduler

    store, config = daemon.runtime.store, daemon.loaded.data
    ctx = Context.from_config(config)
    rollups = Rollups(store, ctx)
    daemon.background.append(rollups.run)
    daemon.event_cursors.append(rollups.cursor_key)  # the stream is not trimmed past it
    daemon.report_scheduler = ReportScheduler(
        store, config, records=getattr(daemon, "records", None)
    )
    daemon.background.append(daemon.report_scheduler.run)
    job = ArchiveJob(
        store, lambda: daemon.loaded.data, records=lambda: getattr(daemon, "records", None)
    )
    daemon.background.append(job.run)
    clocks = getattr(daemon, "clocks", None)  # the SLA engine, when the daemon runs it
    daemon.dashboard = Dashboard(store, config, ctx, sla=clocks)
    daemon.route_hooks.append(route_hook(daemon.dashboard))

    def reload(loaded: Any) -> None:
        new_ctx = Context.from_config(loaded.data)  # raises before anything is swapped
        daemon.report_scheduler.reload(loaded.data)
        rollups.ctx = new_ctx
        daemon.dashboard.config, daemon.dashboard.ctx = loaded.data, new_ctx

    daemon.reload_hooks.append(reload)
