"""Wires reports into the daemon: the report scheduler, the housekeeping pass
(omnidesk.archive_job: retention, then eviction) and, with the records, the fold of
finished days into PostgreSQL's report_days (omnidesk.reports.days) as background jobs,
the removal of older versions' Redis rollups (omnidesk.reports.legacy)
once at start-up, the dashboard as routes. `ReportsPlugin` is a daemon plugin
(omnidesk.plugins, found through the `omnidesk.plugins` entry point); a SIGHUP reload
reaches its parts through its `reload` hook (the housekeeping pass reads `daemon.loaded` each
round)."""

from __future__ import annotations

from typing import Any, ClassVar

from omnidesk.archive_job import ArchiveJob
from omnidesk.configload import LoadedConfig
from omnidesk.plugins import Plugin
from omnidesk.reports.calls import route_hook as call_report_routes
from omnidesk.reports.dashboard import Dashboard, route_hook
from omnidesk.reports.days import ReportDays
from omnidesk.reports.fold import Context
from omnidesk.reports.http import route_hook as report_routes
from omnidesk.reports.legacy import RollupCleanup
from omnidesk.reports.schedule import ReportScheduler
from omnidesk.reports.sql import QueueCalendars


class ReportsPlugin(Plugin):
    """The reports' part of the daemon; it runs before the agents plugin."""

    name: ClassVar[str] = "reports"
    order: ClassVar[int] = 100

    def __init__(self) -> None:
        self.scheduler: ReportScheduler | None = None
        self.dashboard: Dashboard | None = None
        self.days: ReportDays | None = None

    def attach(self, daemon: Any) -> None:
        store, config = daemon.runtime.store, daemon.loaded.data
        ctx = Context.from_config(config)
        records = getattr(daemon, "records", None)
        daemon.background.append(RollupCleanup(store).run)
        self.scheduler = daemon.report_scheduler = ReportScheduler(
            store, config, records=records, base_dir=daemon.loaded.base_dir
        )
        daemon.background.append(self.scheduler.run)
        job = ArchiveJob(
            store, lambda: daemon.loaded.data, records=lambda: getattr(daemon, "records", None)
        )
        daemon.background.append(job.run)
        if records is not None:
            self.days = ReportDays(records.connection, ctx, QueueCalendars.from_config(config))
            daemon.background.append(self.days.run)
        clocks = getattr(daemon, "clocks", None)  # the SLA engine, when the daemon runs it
        connection = records.connection if records is not None else None
        self.dashboard = daemon.dashboard = Dashboard(
            store, config, ctx, sla=clocks, records=connection, authorize=daemon.plugins.authorize,
            authorize_session=daemon.plugins.authorize_session,
            more_agents=daemon.plugins.more_agents,
        )  # fmt: skip
        daemon.route_hooks.append(route_hook(self.dashboard))
        daemon.route_hooks.append(
            report_routes(self.dashboard, connection, base_dir=daemon.loaded.base_dir)
        )
        daemon.route_hooks.append(call_report_routes(self.dashboard, connection))

    def reload(self, loaded: LoadedConfig) -> None:
        new_ctx = Context.from_config(loaded.data)  # raises before anything is swapped
        new_cals = QueueCalendars.from_config(loaded.data)
        if self.scheduler is not None:
            self.scheduler.reload(loaded.data)
        if self.days is not None:  # days folded under the old config are folded again
            self.days.ctx, self.days.calendars = new_ctx, new_cals
        if self.dashboard is not None:
            self.dashboard.reload(loaded.data, new_ctx, new_cals)
