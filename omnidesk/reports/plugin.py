"""Wires reports into the daemon: the report scheduler, the housekeeping pass
(omnidesk.archive_job: retention, then eviction) and, with the records, the fold of
finished days into PostgreSQL's report_days (omnidesk.db.report_days) as background jobs,
the removal of older versions' Redis rollups (omnidesk.reports.legacy)
once at start-up, the dashboard as routes. `install(daemon)` is a daemon plugin
(omnidesk.service); a SIGHUP reload reaches them through `daemon.reload_hooks` (the
housekeeping pass reads `daemon.loaded` each round)."""

from __future__ import annotations

from typing import Any


def install(daemon: Any) -> None:
    from omnidesk.archive_job import ArchiveJob
    from omnidesk.reports.dashboard import Dashboard, route_hook
    from omnidesk.reports.fold import Context
    from omnidesk.reports.legacy import RollupCleanup
    from omnidesk.reports.schedule import ReportScheduler

    store, config = daemon.runtime.store, daemon.loaded.data
    ctx = Context.from_config(config)
    daemon.background.append(RollupCleanup(store).run)
    daemon.report_scheduler = ReportScheduler(
        store, config, records=getattr(daemon, "records", None), base_dir=daemon.loaded.base_dir
    )
    daemon.background.append(daemon.report_scheduler.run)
    job = ArchiveJob(
        store, lambda: daemon.loaded.data, records=lambda: getattr(daemon, "records", None)
    )
    daemon.background.append(job.run)
    days = None
    if getattr(daemon, "records", None) is not None:
        from omnidesk.db.report_days import ReportDays
        from omnidesk.db.reports import QueueCalendars

        days = ReportDays(daemon.records.connection, ctx, QueueCalendars.from_config(config))
        daemon.background.append(days.run)
    clocks = getattr(daemon, "clocks", None)  # the SLA engine, when the daemon runs it
    records = getattr(daemon, "records", None)
    connection = records.connection if records is not None else None
    daemon.dashboard = Dashboard(store, config, ctx, sla=clocks, records=connection)
    daemon.route_hooks.append(route_hook(daemon.dashboard))
    from omnidesk.reports.http import route_hook as report_routes

    daemon.route_hooks.append(
        report_routes(daemon.dashboard, connection, base_dir=daemon.loaded.base_dir)
    )

    def reload(loaded: Any) -> None:
        new_ctx = Context.from_config(loaded.data)  # raises before anything is swapped
        from omnidesk.db.reports import QueueCalendars

        new_cals = QueueCalendars.from_config(loaded.data)
        daemon.report_scheduler.reload(loaded.data)
        if days is not None:  # days folded under the old config are folded again
            days.ctx, days.calendars = new_ctx, new_cals
        daemon.dashboard.reload(loaded.data, new_ctx, new_cals)

    daemon.reload_hooks.append(reload)
