"""One call for every consumer of figures (CLI, scheduled reports, dashboard)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any

from omnidesk.reports.figures import clean_filters, read_raw, summarize
from omnidesk.reports.fold import Context
from omnidesk.reports.rollup import Rollups
from omnidesk.store import Store, guarded


@guarded
def figures(
    store: Store,
    ctx: Context,
    start: date,
    end: date,
    filters: Mapping[str, str | Collection[str] | None] | None = None,
    *,
    catch_up: bool = True,
) -> dict[str, Any]:
    """Figures for [start, end] (local dates). `catch_up` folds pending events first, which
    is safe beside running daemons (the fold is a compare-and-set)."""
    wanted = clean_filters(filters or {})
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    if catch_up:
        Rollups(store, ctx).catch_up()
    today = datetime.now(ctx.tz).date()
    raw = read_raw(store.r, store.prefix, start, end, wanted, today=max(today, end))
    return summarize(raw, start, end, wanted)
