"""The report as text: a table for the terminal, CSV (one row per slice) and JSON.

The table is for a person: with lang=ar its labels and numerals are Arabic. CSV and JSON are
for machines: their column keys (COLUMNS, the figures' keys) stay the same in every language."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from omnidesk.i18n import N_, translator
from omnidesk.reports.callsection import CSV_COLUMNS, csv_rows
from omnidesk.reports.callsection import section as call_section
from omnidesk.reports.html import as_html
from omnidesk.reports.slices import COLUMNS, row, slices  # noqa: F401  (row: re-exported)
from omnidesk.tables import format_table

# the table's labels, marked for omnidesk.pot (the CSV keeps its machine keys)
SLICE_NAMES = {"total": N_("total"), "queue": N_("queue"), "channel": N_("channel"),
               "segment": N_("segment"), "region": N_("region"), "agent": N_("agent")}  # fmt: skip
TABLE_HEAD = (N_("slice"), N_("value"), N_("opened"), N_("resolved"),
              N_("FRT p50/p90 (biz)"), N_("RES p50/p90 (biz)"), N_("FR SLA"), N_("RES SLA"),
              N_("breached"), N_("CSAT"))  # fmt: skip


def as_json(figures: dict[str, Any]) -> str:
    return json.dumps(figures, ensure_ascii=False, indent=1, default=str)


def as_csv(figures: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    # the call rows ("calls", branch) fill their own columns, at the end: one table for machines
    writer.writerow(["slice", "value", *COLUMNS, *CSV_COLUMNS])
    for dim, value, r in slices(figures):
        cells = ("" if r[c] is None else r[c] for c in COLUMNS)
        writer.writerow([dim, value, *cells, *([""] * len(CSV_COLUMNS))])
    for branch, numbers in csv_rows(figures.get("calls")):
        writer.writerow(["calls", branch, *([""] * len(COLUMNS)),
                         *("" if n is None else n for n in numbers)])  # fmt: skip
    return buf.getvalue()


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds / 3600:g}h"
    return f"{seconds / 86400:g}d"


def share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def as_table(figures: dict[str, Any], lang: str = "en", digits: str = "latn") -> str:
    tr = translator(lang, digits)
    p, t = figures["period"], figures["totals"]
    filt = ", ".join(f"{k}={v if isinstance(v, str) else '+'.join(v)}"
                     for k, v in figures["filters"].items()) or tr._("none")  # fmt: skip
    summary = tr._(
        "opened {opened}, resolved {resolved}, reopened {reopened}, transfers "
        "{transfers}, backlog {start} -> {end}, fell to the default queue {default}"
    )
    lines = [
        tr._("Report {start} .. {end}   filters: {filters}").format(
            start=p["from"], end=p["to"], filters=filt),
        tr.digits_of(summary.format(
            opened=t["opened"], resolved=t["resolved"], reopened=t["reopened"],
            transfers=t["transfers"], start=figures["backlog"]["start"],
            end=figures["backlog"]["end"], default=figures["routing"]["default_queue"])),
        "",
    ]  # fmt: skip
    head = [tr._(label) for label in TABLE_HEAD]
    rows = []
    for dim, value, r in slices(figures):
        rows.append([tr._(SLICE_NAMES[dim]), value or "-"] + [tr.digits_of(cell) for cell in (
            str(r["opened"]), str(r["resolved"]),
            f"{duration(r['frt_p50_b'])}/{duration(r['frt_p90_b'])}",
            f"{duration(r['res_p50_b'])}/{duration(r['res_p90_b'])}",
            share(r["fr_compliance"]), share(r["res_compliance"]), str(r["breached"]),
            "-" if r["csat_avg"] is None else f"{r['csat_avg']} ({r['csat_n']})",
        )])  # fmt: skip
    lines.append(format_table(head, rows))
    calls = call_section(tr, figures.get("calls"), {})
    if calls is not None:
        lines += ["", calls["title"]]
        if calls["rows"]:
            lines.append(
                format_table(calls["head"], [[name, *cells] for name, cells in calls["rows"]])
            )
        else:
            lines.append(calls["note"])
    rules = figures["routing"]["top_rules"][:10]
    if rules:
        top = ", ".join(f"{name} {tr.digits_of(str(n))}" for name, n in rules)
        lines += ["", tr._("top rules: {rules}").format(rules=top)]
    return "\n".join(lines)


def render(figures: dict[str, Any], fmt: str, **html_options: Any) -> str:
    """`html_options` (lang, titles, digits, branding) apply to the HTML page; lang and
    digits to the table too."""
    if fmt == "json":
        return as_json(figures)
    if fmt == "csv":
        return as_csv(figures)
    if fmt == "html":
        return as_html(figures, **html_options)
    return as_table(figures, html_options.get("lang", "en"), html_options.get("digits", "latn"))
