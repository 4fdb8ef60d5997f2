"""The "Calls" section of the main report (`omnidesk report`, GET /v1/reports, scheduled
mails, the dashboard's today block): the call report's one query (omnidesk.reports.calls)
run under the report's own filters, and its figures as a person reads them.

The filters map onto the call book's branches (a PBX's `branch` is a queue or region name):
a queue filter (a supervisor's set too) keeps its queues and their regions, a region filter
that region and its queues; a channel other than `phone` has no calls; an agent filter keeps
the calls that agent answered. Calls have no customer segment, so under a segment filter
the section says it is left out rather than counting every segment's calls. Without a `cti`
section in the config, or before schema 0006, there is no section at all (`None`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from omnidesk.i18n import N_, Translator
from omnidesk.reports.calls import branches_of, call_figures

FIGURES = ("calls", "answered", "missed", "voicemail", "callbacks")
HEAD = (N_("Branch"), N_("Calls"), N_("Answered"), N_("Missed"), N_("Voicemail"),
        N_("Callbacks"), N_("Answer rate"), N_("Average handle time"))  # fmt: skip
TITLE = N_("Calls")
NO_CALLS = N_("no calls")
ALL_CALLS = N_("All calls")
NOT_BY_SEGMENT = N_("Calls have no customer segment: they are left out under a segment filter.")
CSV_COLUMNS = ("calls", "calls_answered", "calls_missed", "calls_voicemail", "calls_callbacks",
               "calls_answer_rate", "calls_average_handle_s")  # fmt: skip


def scope(config: Any, filters: Mapping[str, Any]) -> set[str] | None:
    """The branches the report's queue and region filters cover (None: every branch)."""
    branches: set[str] | None = None
    queue = filters.get("queue")
    queues = (queue,) if isinstance(queue, str) else tuple(queue or ())
    if queue is not None and not set(config.queues) <= set(queues):  # every queue: no filter
        branches = branches_of(config, queues)
    region = filters.get("region")
    if region is not None:
        in_region = {region} | {n for n, q in config.queues.items() if q.region == region}
        branches = in_region if branches is None else branches & in_region
    return branches


def _agent_id(config: Any, agent: str | None) -> str | None:
    """The call book keeps agent ids; a filter may name an agent by e-mail."""
    if agent is None:
        return None
    return next((a.id for a in config.agents if agent in (a.id, a.email)), agent)


def calls_for(
    conn: Any, config: Any, tz: ZoneInfo, start: date, end: date, filters: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The report's call figures for [start, end] under `filters`, or None (no phone)."""
    if getattr(config, "cti", None) is None:
        return None
    row = conn.execute("SELECT to_regclass('calls') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return None
    if filters.get("segment") is not None:
        return {"from": start.isoformat(), "to": end.isoformat(), "left_out": "segment",
                "branches": [], "total": None}  # fmt: skip
    channel = filters.get("channel")
    branches = set() if channel not in (None, "phone") else scope(config, filters)
    return call_figures(conn, start, end, tz, branches, _agent_id(config, filters.get("agent")))


def handle_time(tr: Translator, seconds: float | None) -> str:
    """Talk time as people say it: "4 min 30 sec", "١ س ٥ د"; None: "no data"."""
    if seconds is None:
        return tr._("no data")
    from babel.units import format_unit

    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "duration-hour"), (minutes, "duration-minute"), (secs, "duration-second")]
    shown = [(n, unit) for n, unit in parts if n] or [(0, "duration-second")]
    if hours:  # an hour-long average needs no seconds
        shown = [(n, unit) for n, unit in shown if unit != "duration-second"]
    text = " ".join(format_unit(n, unit, length="short", locale=tr.locale) for n, unit in shown)
    return tr.digits_of(text)


def _cells(tr: Translator, r: dict[str, Any]) -> list[str]:
    rate = r["answer_rate"]
    return [*(tr.number(r[k]) for k in FIGURES),
            tr._("no data") if rate is None else tr.percent(rate),
            handle_time(tr, r["average_handle_s"])]  # fmt: skip


def section(
    tr: Translator, calls: dict[str, Any] | None, titles: dict[str, str]
) -> dict[str, Any] | None:
    """The HTML page's and the table's section: heading, header, rows of (name, cells), and
    a note in place of rows when there is nothing to count; None: no section."""
    if calls is None:
        return None
    out: dict[str, Any] = {
        "title": tr._(TITLE),
        "head": [tr._(h) for h in HEAD],
        "rows": [],
        "note": "",
    }
    if calls.get("left_out") == "segment":
        out["note"] = tr._(NOT_BY_SEGMENT)
    elif not calls["total"]["calls"]:
        out["note"] = tr._(NO_CALLS)
    else:
        rows = [(titles.get(r["branch"], r["branch"]) or "—", _cells(tr, r))
                for r in calls["branches"]]  # fmt: skip
        out["rows"] = [*rows, (tr._(ALL_CALLS), _cells(tr, calls["total"]))]
    return out


def csv_rows(calls: dict[str, Any] | None) -> list[tuple[str, list[Any]]]:
    """(branch, CSV_COLUMNS values) per branch, then the total ("" as its branch)."""
    if calls is None or calls.get("total") is None:
        return []
    blocks = [*((r["branch"], r) for r in calls["branches"]), ("", calls["total"])]
    return [(name, [*(r[k] for k in FIGURES), r["answer_rate"], r["average_handle_s"]])
            for name, r in blocks if r["calls"]]  # fmt: skip
