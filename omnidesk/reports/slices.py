"""The report's figures flattened into slices (the total, then one per queue, channel, ...),
each a row of COLUMNS: what the CSV, the text table and the HTML page all print."""

from __future__ import annotations

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
