"""`omnidesk report --from --to [filters] [--format table|csv|json|html|pdf]`: figures for a
period, computed in PostgreSQL (omnidesk.reports.source; see docs/reports.md); PostgreSQL
away is one line and exit 2. The HTML page and the PDF are in the
language of `--lang` (omnidesk.i18n), with the config's `branding`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from omnidesk.configload import load_config
from omnidesk.errors import PermanentError
from omnidesk.i18n import DIGITS, LANGS
from omnidesk.model import Channel, Segment

FORMATS = ("table", "csv", "json", "html", "pdf")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="performance figures for a period (from PostgreSQL)")
    p.add_argument("--from", dest="start", help="first local date YYYY-MM-DD (default: 29 "
                   "days before --to)")  # fmt: skip
    p.add_argument("--to", dest="end", help="last local date YYYY-MM-DD (default: today)")
    for dim in ("queue", "region", "agent"):
        p.add_argument(f"--{dim}")
    p.add_argument("--channel", choices=[c.value for c in Channel])
    p.add_argument("--segment", choices=[s.value for s in Segment])
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument(
        "--lang",
        choices=LANGS,
        default="en",
        help="language of the HTML, PDF and table (CSV and JSON keep their keys)",
    )
    p.add_argument("--digits", choices=DIGITS, default="latn",
                   help="arab: Arabic-Indic digits (with --lang ar)")  # fmt: skip
    p.add_argument("--output", "--out", "-o", dest="output",
                   help="write to this file instead of stdout (required for pdf)")  # fmt: skip
    p.add_argument("--config", help="default: $OMNIDESK_CONFIG or ./queue_config.yaml")
    p.set_defaults(func=run)


def parse_day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PermanentError(f"{flag} {text!r}: not a date (use YYYY-MM-DD)") from None


def run(args: argparse.Namespace) -> int:
    from omnidesk.db.connect import connect, conninfo, records_errors
    from omnidesk.reports.fold import Context
    from omnidesk.reports.render import render
    from omnidesk.reports.source import figures_for

    if args.format == "pdf" and not args.output:
        raise PermanentError("--format pdf writes a file: give --out FILE")
    loaded = load_config(args.config)
    service = loaded.data.service
    ctx = Context.from_config(loaded.data)
    end = parse_day(args.end, "--to") if args.end else datetime.now(ctx.tz).date()
    start = parse_day(args.start, "--from") if args.start else end - timedelta(days=29)
    filters = {d: getattr(args, d) for d in ("queue", "region", "channel", "segment", "agent")}
    info = conninfo(service)

    @contextmanager
    def records() -> Iterator[Any]:  # a query's lost connection is an outage too
        with records_errors(info), connect(info) as conn:
            yield conn

    try:
        result = figures_for(records, loaded.data, ctx, start, end, filters)
    except ValueError as exc:
        raise PermanentError(str(exc)) from None
    titles = {name: q.title for name, q in loaded.data.queues.items() if q.title}
    from omnidesk.reports.html import branding_from

    branding = branding_from(loaded.data, loaded.base_dir)
    options = {"lang": args.lang, "titles": titles, "digits": args.digits, "branding": branding}
    if args.format == "pdf":
        from omnidesk.reports.html import as_html
        from omnidesk.reports.pdf import html_to_pdf

        Path(args.output).write_bytes(html_to_pdf(as_html(result, **options)))
        return 0
    text = render(result, args.format, **options)
    if not text.endswith("\n"):  # CSV rows already end in CRLF: no bare LF line after them
        text += "\n"
    if args.output:
        Path(args.output).write_text(text, "utf-8", newline="")
    else:
        sys.stdout.write(text)
    return 0
