"""`omnidesk calls --from --to [--branch B] [--json]`: the call report (calls per branch,
answer rate, average handle time) from the call book in PostgreSQL, as GET
/v1/reports/calls gives it; PostgreSQL away is one line and exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta

from omnidesk.configload import load_config
from omnidesk.errors import PermanentError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("calls", help="the call report: calls per branch, answer rate, AHT")
    p.add_argument("--from", dest="start", help="first local date YYYY-MM-DD (default: 29 "
                   "days before --to)")  # fmt: skip
    p.add_argument("--to", dest="end", help="last local date YYYY-MM-DD (default: today)")
    p.add_argument("--branch", action="append", help="only this branch (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    p.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")
    p.set_defaults(func=run)


def _cell(name: str, value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if name == "answer_rate" and isinstance(value, float) else str(value)


def run(args: argparse.Namespace) -> int:
    from omnidesk.commands.report import parse_day
    from omnidesk.db.connect import connect, conninfo, records_errors
    from omnidesk.reports.calls import COLUMNS, call_figures
    from omnidesk.reports.fold import Context
    from omnidesk.tables import format_table

    loaded = load_config(args.config)
    tz = Context.from_config(loaded.data).tz
    end = parse_day(args.end, "--to") if args.end else datetime.now(tz).date()
    start = parse_day(args.start, "--from") if args.start else end - timedelta(days=29)
    if start > end:
        raise PermanentError("--from is after --to")
    info = conninfo(loaded.data.service)
    with records_errors(info), connect(info) as conn:
        figures = call_figures(conn, start, end, tz, args.branch)
    if args.json:
        sys.stdout.write(json.dumps(figures, ensure_ascii=False) + "\n")
        return 0
    names = [*COLUMNS[:-1], "answer_rate", "average_handle_s"]
    rows = [[_cell(n, row[n]) for n in names] for row in figures["branches"]]
    rows.append([_cell(n, figures["total"].get(n, "total")) for n in names])
    sys.stdout.write(format_table(names, rows) + "\n")
    return 0
