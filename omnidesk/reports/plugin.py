"""Wires reports into the daemon: the rollup consumer and the report scheduler as background
jobs, the dashboard as routes. `install(daemon)` is a daemon plugin (omnidesk.service)."""

from __future__ import annotations

from typing import Any


def install(daemon: Any) -> None:
    from omnidesk.reports.dashboard import Dashboard, route_hook
    from omnidesk.reports.fold import Context
    from omnidesk.reports.rollup import Rollups
    from omnidesk.reports.schedule import ReportScheduler

    store, config = daemon.runtime.store, daemon.loaded.data
    ctx = Context.from_config(config)
    daemon.background.append(Rollups(store, ctx).run)
    daemon.background.append(ReportScheduler(store, config).run)
    clocks = getattr(daemon, "clocks", None)  # the SLA engine, when the daemon runs it
    daemon.dashboard = Dashboard(store, config, ctx, sla=clocks)
    daemon.route_hooks.append(route_hook(daemon.dashboard))
