"""The report as one self-contained, printable HTML page with charts (and, through
omnidesk.reports.pdf, the PDF the director submits).

Every word, header, axis, number and date comes from omnidesk.i18n (the gettext catalogues
and Babel's ar_SA / en formats), so ``--lang ar`` gives a wholly Arabic right-to-left page
and ``--digits arab`` Arabic-Indic digits. Charts are matplotlib figures saved as inline SVG
with ``svg.fonttype = none``: their text stays text, so the browser shapes Arabic labels
and the page prints sharp. Every name from outside (queue ids, regions, agents, rules,
comments) sits in its own ``<bdi>``, and label/value pairs are table cells rather than
"label: value" runs, so mixed Arabic/Latin lines keep their order (no ``2 :queue-id``).
A figure with nothing to measure reads "no data", never 0 %.
"""

from __future__ import annotations

import base64
import io
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from omnidesk.errors import MissingExtra, PermanentError
from omnidesk.i18n import N_, Translator, translator
from omnidesk.reports.callsection import section as call_section
from omnidesk.reports.slices import slices
from omnidesk.text import display_safe

# Values the report names that a person reads in their language (the rest, queue ids,
# regions, agents and rule names, are shown as they are, queue titles where configured).
DIM_NAMES = {
    "total": N_("All tickets"), "queue": N_("Queue"), "channel": N_("Channel"),
    "segment": N_("Segment"), "region": N_("Region"), "agent": N_("Agent"),
}  # fmt: skip
VALUE_NAMES = {
    "channel": {"email": N_("e-mail"), "telegram": N_("Telegram"), "twitter": N_("X (Twitter)"),
                "whatsapp": N_("WhatsApp"), "web": N_("web form"), "phone": N_("phone")},
    "segment": {"consumer": N_("consumer"), "business": N_("business"),
                "unknown": N_("unknown")},
}  # fmt: skip
TARGET_NAMES = {
    "first_response": N_("first response"), "next_response": N_("next response"),
    "resolution": N_("resolution"), "unknown": N_("unknown"),
}  # fmt: skip

LISTED = 100  # rows shown of each list (breached tickets, default queue, comments)
COLOUR = "#006c35"  # the default brand colour (a ministry's green) when none is configured


def duration(tr: Translator, seconds: int | None) -> str:
    """A bucket bound as CLDR's short unit ("5 min", "٥ د"); None (no tickets) is "no data"."""
    if seconds is None:
        return tr._("no data")
    from babel.dates import format_timedelta

    return tr.digits_of(format_timedelta(seconds, threshold=1, format="short", locale=tr.locale))


def share(tr: Translator, x: float | None) -> str:
    return tr._("no data") if x is None else tr.percent(x)


def value_name(tr: Translator, dim: str, value: str, titles: dict[str, str]) -> str:
    if dim == "queue":
        return titles.get(value, value)
    known = VALUE_NAMES.get(dim, {}).get(value)
    if known:
        return tr._(known)
    return value or "—"


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _count_axis(ax: Any, tr: Translator, *, percent: bool = False) -> None:
    """Counts never go below 0, an empty chart still has an axis, and its numbers are
    localized (Arabic-Indic digits when asked)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if percent:
        ax.set_ylim(0, 100)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: tr.percent(v / 100, 0)))
    else:
        _, high = ax.get_ylim()
        ax.set_ylim(0, max(high, 1))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: tr.number(int(v))))


def charts(figures: dict[str, Any], tr: Translator, titles: dict[str, str]) -> dict[str, str]:
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra("the HTML and PDF report's charts", "charts") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9,
                         "font.family": ["DejaVu Sans"]})  # fmt: skip
    out = {}
    days = list(figures["volume"]["opened_by_day"])
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.bar(range(len(days)), list(figures["volume"]["opened_by_day"].values()), color="#3b7dd8")
    step = max(1, len(days) // 8)
    ax.set_xticks(range(0, len(days), step),
                  [tr.date(date.fromisoformat(d), "d MMM") for d in days[::step]],
                  rotation=30, ha="right")  # fmt: skip
    ax.set_xlabel(tr._("day"))
    ax.set_ylabel(tr._("tickets"))
    _count_axis(ax, tr)
    out["volume"] = _svg(fig)

    regions = figures["by"]["region"]
    names = [value_name(tr, "region", r, titles) for r in regions]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    for i, target in enumerate(("first_response", "resolution")):
        xs = [x + i * 0.4 for x in range(len(names))]
        shares = [b["sla"][target]["compliance"] for b in regions.values()]
        ax.bar(xs, [0 if s is None else 100 * s for s in shares], width=0.4,
               label=tr._(TARGET_NAMES[target]))  # fmt: skip
        for x, s in zip(xs, shares, strict=True):  # nothing to measure: say so, not 0 %
            if s is None:
                ax.text(x, 2, tr._("no data"), rotation=90, ha="center", va="bottom",
                        fontsize=7, color="#777")  # fmt: skip
    ax.set_xticks([x + 0.2 for x in range(len(names))], names, rotation=30, ha="right")
    ax.set_xlabel(tr._("region"))
    ax.set_ylabel(tr._("% of tickets within the target"))
    _count_axis(ax, tr, percent=True)
    if names:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, tr._("no data"), transform=ax.transAxes, ha="center", color="#777")
    out["sla"] = _svg(fig)

    hist = figures["totals"]["first_response"]["business"]["histogram"]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    labels = ["≤ " + duration(tr, int(b)) if b != "inf" else "> " + duration(tr, 2592000)
              for b in hist]  # fmt: skip
    ax.bar(range(len(hist)), list(hist.values()), color="#5aa469")
    ax.set_xticks(range(len(hist)), labels, rotation=60, fontsize=7)
    ax.set_xlabel(tr._("first response time (business hours)"))
    ax.set_ylabel(tr._("tickets"))
    _count_axis(ax, tr)
    out["frt"] = _svg(fig)

    dist = figures["totals"]["csat"]["distribution"]
    fig, ax = plt.subplots(figsize=(4, 2.6))
    ax.bar(range(len(dist)), list(dist.values()), color="#e0a030")
    ax.set_xticks(range(len(dist)), [tr.number(int(s)) for s in dist])
    ax.set_xlabel(tr._("score"))
    ax.set_ylabel(tr._("answers"))
    _count_axis(ax, tr)
    out["csat"] = _svg(fig)
    return out


def branding_from(config: Any, base_dir: Path | None) -> Any:
    """The config's branding with its logo path made absolute from the config file's folder
    (`base_dir`), as every other path in the config is; None without branding."""
    branding = getattr(config, "branding", None)
    if branding is None or not branding.logo or base_dir is None:
        return branding
    return branding.model_copy(update={"logo": str(Path(base_dir) / branding.logo)})


def _logo(path: str | None) -> str:
    """The configured logo inlined as a data: URI, so the page and its PDF stand alone."""
    if not path:
        return ""
    kinds = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg",
             ".jpeg": "image/jpeg"}  # fmt: skip
    p = Path(path)
    kind = kinds.get(p.suffix.lower())
    if kind is None:
        raise PermanentError(f"branding logo {path!r}: use a .png, .svg or .jpg file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PermanentError(f"branding logo {path!r}: {exc.strerror}") from None
    return f'<img alt="" src="data:{kind};base64,{base64.b64encode(data).decode()}">'


PAGES = Environment(
    loader=PackageLoader("omnidesk.reports", "pages"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=False,
)
# Text from outside (CSAT comments, names) loses bidi overrides and control characters.
PAGES.filters["display_safe"] = lambda text: display_safe(str(text))


def as_html(
    figures: dict[str, Any],
    lang: str = "en",
    titles: dict[str, str] | None = None,
    *,
    digits: str = "latn",
    branding: Any = None,
) -> str:
    """The page (reports/pages/report.html); `titles` maps queue ids to their (often Arabic)
    titles; `branding` is the config's `branding` (the ministry's name, logo and colour) or
    None."""
    tr = translator(lang, digits)
    titles = titles or {}
    p = figures["period"]
    t, backlog, routing = figures["totals"], figures["backlog"], figures["routing"]
    svg = charts(figures, tr, titles)
    org = ""
    if branding is not None:
        org = branding.name_ar if lang == "ar" else branding.name_en
    values = {
        "lang": lang,
        "direction": tr.direction,
        "colour": getattr(branding, "colour", None) or COLOUR,
        "title": tr._("Performance report"),
        "org": org,
        "logo": Markup(_logo(branding.logo)) if branding is not None else "",
        "no_data": tr._("no data"),
        "comma": "، " if lang == "ar" else ", ",  # a queue filter may be a set (a supervisor's)
        "words": {
            "period": tr._("Period"), "filters": tr._("Filters"), "none": tr._("none"),
            "by_slice": tr._("Figures by slice"), "top_rules": tr._("Top routing rules"),
            "rule": tr._("Rule"), "tickets": tr._("Tickets"),
        },
        "period": {
            "from": p["from"], "to": p["to"],
            "days": [tr.date(date.fromisoformat(p[k]), "long") for k in ("from", "to")],
        },
        "filters": [
            (tr._(DIM_NAMES[k]),
             [value_name(tr, k, x, titles) for x in ([v] if isinstance(v, str) else v)])
            for k, v in figures["filters"].items()
        ],
        "summary": [
            (tr._("Tickets opened"), tr.number(t["opened"])),
            (tr._("Tickets resolved"), tr.number(t["resolved"])),
            (tr._("Tickets reopened"), tr.number(t["reopened"])),
            (tr._("Transfers"), tr.number(t["transfers"])),
            (tr._("Backlog at the start"), tr.number(backlog["start"])),
            (tr._("Backlog at the end"), tr.number(backlog["end"])),
            (tr._("Tickets that fell to the default queue"), tr.number(routing["default_queue"])),
        ],
        "charts": [
            (tr._("Tickets opened per day"), Markup(svg["volume"])),
            (tr._("SLA compliance per branch/region"), Markup(svg["sla"])),
            (tr._("First response time (business hours)"), Markup(svg["frt"])),
            (tr._("CSAT answers by score"), Markup(svg["csat"])),
        ],
        "slice_head": [
            tr._("Slice"), tr._("Value"), tr._("Opened"), tr._("Resolved"),
            tr._("First response p50 (business)"), tr._("First response p90 (business)"),
            tr._("Resolution p50 (business)"), tr._("First response SLA"),
            tr._("Resolution SLA"), tr._("Breached"), tr._("CSAT average"), tr._("Transfers"),
        ],
        "slices": [
            (tr._(DIM_NAMES[dim]), value_name(tr, dim, value, titles) if dim != "total" else "",
             slice_numbers(tr, r))
            for dim, value, r in slices(figures)
        ],
        "rules": [(name, tr.number(n)) for name, n in routing["top_rules"][:10]],
        "lists": lists(figures, tr),
        "calls": call_section(tr, figures.get("calls"), titles),
    }  # fmt: skip
    return PAGES.get_template("report.html").render(values)


def slice_numbers(tr: Translator, r: dict[str, Any]) -> list[str]:
    return [tr.number(r["opened"]), tr.number(r["resolved"]), duration(tr, r["frt_p50_b"]),
            duration(tr, r["frt_p90_b"]), duration(tr, r["res_p50_b"]),
            share(tr, r["fr_compliance"]), share(tr, r["res_compliance"]),
            tr.number(r["breached"]),
            tr._("no data") if r["csat_avg"] is None else tr.number(r["csat_avg"]),
            tr.number(r["transfers"])]  # fmt: skip


def lists(figures: dict[str, Any], tr: Translator) -> list[dict[str, Any]]:
    """The listed tickets and comments, each cell (text, from outside: put in a <bdi>)."""

    def day(item: dict[str, Any]) -> str:
        return tr.date(date.fromisoformat(item["day"])) if item.get("day") else ""

    routing = figures["routing"]
    kinds = (
        (tr._("Breached tickets"), figures["breached_tickets"],
         (tr._("Ticket"), tr._("Target"), tr._("Day")),
         lambda i: [(i.get("ticket", ""), True),
                    (tr._(TARGET_NAMES.get(i.get("target", ""), "unknown")), False),
                    (day(i), False)]),
        (tr._("Tickets that fell to the default queue"),
         [{"ticket": t} for t in routing["default_queue_tickets"]], (tr._("Ticket"),),
         lambda i: [(i["ticket"], True)]),
        (tr._("CSAT comments"), figures["csat_comments"],
         (tr._("Ticket"), tr._("Score"), tr._("Comment")),
         lambda i: [(i.get("ticket", ""), True), (tr.number(int(i.get("score") or 0)), False),
                    (i.get("comment", ""), True)]),
    )  # fmt: skip
    out = []
    for caption, items, header, cells_of in kinds:
        if not items:
            continue
        more = ""
        if len(items) > LISTED:
            more = tr.ngettext("Only the first {n} entry is listed.",
                               "Only the first {n} entries are listed.", LISTED)  # fmt: skip
        rows = [cells_of(item) for item in items[:LISTED]]
        out.append({"caption": caption, "header": header, "rows": rows, "more": more})
    return out
