"""Bulk upserts for the records writer: a batch's rows are COPYed into a temporary table of
the connection's, then written with one INSERT ... SELECT ... ON CONFLICT per table.

Why not executemany: every row would be a statement of its own, parsed, planned and run one
by one, and the events table's statement trigger (report_days_dirty) would fire once per
event instead of once per batch. One COPY and one statement per table cut PostgreSQL's CPU
per ticket and the writer's own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class Stage:
    """A temporary table with `columns` of `source` (typed as they are there), emptied at
    every commit and kept for the session's next batch. `computed` adds columns of its own,
    as `name type`."""

    name: str
    source: str
    columns: tuple[str, ...]
    computed: tuple[str, ...] = ()

    def create_sql(self) -> str:
        extra = "".join(f", NULL::{c.split()[1]} AS {c.split()[0]}" for c in self.computed)
        return (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.name} ON COMMIT DELETE ROWS AS"
            f" SELECT {', '.join(self.columns)}{extra} FROM {self.source} WITH NO DATA"
        )

    def copy_sql(self) -> str:
        names = [*self.columns, *(c.split()[0] for c in self.computed)]
        return f"COPY {self.name} ({', '.join(names)}) FROM STDIN"


async def ensure_stages(cur: psycopg.AsyncCursor[Any], stages: Sequence[Stage]) -> None:
    """Make the stage tables the connection lacks, in the batch's own transaction and one
    round trip (no parameters: one simple query of several statements). Each batch asks, so
    a reconnect, a rolled-back first batch or a pooled server connection finds them too."""
    await cur.execute("; ".join(stage.create_sql() for stage in stages))


async def stage_rows(
    cur: psycopg.AsyncCursor[Any], stage: Stage, rows: Sequence[Sequence[Any]]
) -> None:
    """The rows into the stage table, in one COPY; the caller's statement reads them."""
    async with cur.copy(stage.copy_sql()) as copy:
        for row in rows:
            await copy.write_row(row)
