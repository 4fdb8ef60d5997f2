"""One call for every consumer of figures (CLI, scheduled reports, dashboard)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from omnidesk.reports.figures import FILTER_KEYS, read_raw, summarize
from omnidesk.reports.fold import Context
from omnidesk.reports.rollup import Rollups
from omnidesk.store import Store, guarded


@guarded
def figures(
    store: Store,
    ctx: Context,
    start: date,
    end: date,
    filters: dict[str, str] | None = None,
    *,
    catch_up: bool = True,
) -> dict[str, Any]:
    """Figures for [start, end] (local dates). `catch_up` folds pending events first, which
    is safe beside running daemons (the fold is a compare-and-set)."""
    filters = {k: v for k, v in (filters or {}).items() if v is not None}
    bad = sorted(set(filters) - set(FILTER_KEYS))
    if bad:
        raise ValueError(f"unknown filter {bad}; use {', '.join(FILTER_KEYS)}")
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    if catch_up:
        Rollups(store, ctx).catch_up()
    today = datetime.now(ctx.tz).date()
    raw = read_raw(store.r, store.prefix, start, end, filters, today=max(today, end))
    return summarize(raw, start, end, filters)
