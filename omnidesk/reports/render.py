"""The report as text: a table for the terminal, CSV (one row per slice) and JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from omnidesk.reports.fold import DIMS

COLUMNS = (
    "opened", "resolved", "reopen_rate", "transfers", "frt_p50_b", "frt_p90_b", "frt_p50_w",
    "frt_p90_w", "res_p50_b", "res_p90_b", "fr_compliance", "res_compliance", "breached",
    "csat_avg", "csat_n",
)  # fmt: skip


def row(block: dict[str, Any]) -> dict[str, Any]:
    """The flat figures of one slice, in COLUMNS order."""
    fr, res, sla = block["first_response"], block["resolution"], block["sla"]
    return {
        "opened": block["opened"],
        "resolved": block["resolved"],
        "reopen_rate": block["reopen_rate"],
        "transfers": block["transfers"],
        "frt_p50_b": fr["business"]["p50_s"],
        "frt_p90_b": fr["business"]["p90_s"],
        "frt_p50_w": fr["wall"]["p50_s"],
        "frt_p90_w": fr["wall"]["p90_s"],
        "res_p50_b": res["business"]["p50_s"],
        "res_p90_b": res["business"]["p90_s"],
        "fr_compliance": sla["first_response"]["compliance"],
        "res_compliance": sla["resolution"]["compliance"],
        "breached": sum(t["breached"] for t in sla.values()),
        "csat_avg": block["csat"]["average"],
        "csat_n": block["csat"]["responses"],
    }


def slices(figures: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = [("total", "", row(figures["totals"]))]
    for dim in DIMS:
        for value, block in figures["by"][dim].items():
            out.append((dim, value, row(block)))
    return out


def as_json(figures: dict[str, Any]) -> str:
    return json.dumps(figures, ensure_ascii=False, indent=1, default=str)


def as_csv(figures: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["slice", "value", *COLUMNS])
    for dim, value, r in slices(figures):
        writer.writerow([dim, value, *("" if r[c] is None else r[c] for c in COLUMNS)])
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


def as_table(figures: dict[str, Any]) -> str:
    from omnidesk.commands.tickets import format_table

    p, t = figures["period"], figures["totals"]
    filt = ", ".join(f"{k}={v}" for k, v in figures["filters"].items()) or "none"
    lines = [
        f"Report {p['from']} .. {p['to']}   filters: {filt}",
        f"opened {t['opened']}, resolved {t['resolved']}, reopened {t['reopened']}, "
        f"transfers {t['transfers']}, backlog {figures['backlog']['start']} -> "
        f"{figures['backlog']['end']}, fell to the default queue "
        f"{figures['routing']['default_queue']}",
        "",
    ]
    head = ["slice", "value", "opened", "resolved", "FRT p50/p90 (biz)", "RES p50/p90 (biz)",
            "FR SLA", "RES SLA", "breached", "CSAT"]  # fmt: skip
    rows = []
    for dim, value, r in slices(figures):
        rows.append([
            dim, value or "-", str(r["opened"]), str(r["resolved"]),
            f"{duration(r['frt_p50_b'])}/{duration(r['frt_p90_b'])}",
            f"{duration(r['res_p50_b'])}/{duration(r['res_p90_b'])}",
            share(r["fr_compliance"]), share(r["res_compliance"]), str(r["breached"]),
            "-" if r["csat_avg"] is None else f"{r['csat_avg']} ({r['csat_n']})",
        ])  # fmt: skip
    lines.append(format_table(head, rows))
    rules = figures["routing"]["top_rules"][:10]
    if rules:
        lines += ["", "top rules: " + ", ".join(f"{name} {n}" for name, n in rules)]
    return "\n".join(lines)


def render(figures: dict[str, Any], fmt: str, **html_options: Any) -> str:
    """`html_options` (lang, titles) apply to the HTML page only."""
    if fmt == "json":
        return as_json(figures)
    if fmt == "csv":
        return as_csv(figures)
    if fmt == "html":
        from omnidesk.reports.html import as_html

        return as_html(figures, **html_options)
    return as_table(figures)
