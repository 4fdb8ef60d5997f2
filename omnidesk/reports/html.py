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
import html
import io
from datetime import date
from pathlib import Path
from typing import Any

from omnidesk.errors import MissingExtra, PermanentError
from omnidesk.i18n import N_, Translator, translator
from omnidesk.reports.render import slices
from omnidesk.text import display_safe

# Values the report names that a person reads in their language (the rest, queue ids,
# regions, agents and rule names, are shown as they are, queue titles where configured).
DIM_NAMES = {
    "total": N_("All tickets"), "queue": N_("Queue"), "channel": N_("Channel"),
    "segment": N_("Segment"), "region": N_("Region"), "agent": N_("Agent"),
}  # fmt: skip
VALUE_NAMES = {
    "channel": {"email": N_("e-mail"), "telegram": N_("Telegram"), "twitter": N_("X (Twitter)"),
                "whatsapp": N_("WhatsApp"), "web": N_("web form")},
    "segment": {"consumer": N_("consumer"), "business": N_("business"),
                "unknown": N_("unknown")},
}  # fmt: skip
TARGET_NAMES = {
    "first_response": N_("first response"), "next_response": N_("next response"),
    "resolution": N_("resolution"), "unknown": N_("unknown"),
}  # fmt: skip

CSS = """
:root { --brand: %(colour)s; }
body { font-family: "Noto Sans", "Noto Naskh Arabic", "DejaVu Sans", sans-serif; margin: 2em;
       color: #222; }
header.brand { display: flex; align-items: center; gap: 1em; border-bottom: 3px solid var(--brand);
       padding-bottom: .5em; }
header.brand img { height: 3.5em; }
header.brand .org { font-size: 1.1em; font-weight: bold; color: var(--brand); }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.5em; color: var(--brand); }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #bbb; padding: .2em .5em; text-align: start; }
th { background: #f1f3f5; }
td.n { text-align: end; font-variant-numeric: tabular-nums; }
td.none { color: #777; font-style: italic; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; width: 30em; } figure svg { width: 100%%; height: auto; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; font-size: 9.5pt; }
  .charts { gap: 4mm; }
  figure { width: calc(50%% - 2mm); }  /* two charts a row: the screen's 30em leaves half
                                         an A4 page empty beside each */
  figure, table, tr { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""
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


def _bdi(text: Any) -> str:
    """Text from outside (CSAT comments, names) isolated in its own direction, escaped, and
    without bidi overrides or control characters (display_safe)."""
    return f'<bdi dir="auto">{html.escape(display_safe(str(text)))}</bdi>'


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


def _h(tag: str, text: str) -> str:
    """One element holding escaped text (labels are translated outside f-strings, where
    `pybabel extract` finds them)."""
    return f"<{tag}>{html.escape(text)}</{tag}>"


def _cell(text: str, tr: Translator, numeric: bool = True) -> str:
    cls = "none" if text == tr._("no data") else "n" if numeric else ""
    return f'<td class="{cls}">{html.escape(text)}</td>' if cls else f"<td>{text}</td>"


def as_html(
    figures: dict[str, Any],
    lang: str = "en",
    titles: dict[str, str] | None = None,
    *,
    digits: str = "latn",
    branding: Any = None,
) -> str:
    """The page; `titles` maps queue ids to their (often Arabic) titles; `branding` is the
    config's `branding` (the ministry's name, logo and colour) or None."""
    tr = translator(lang, digits)
    titles = titles or {}
    p = figures["period"]
    period = " – ".join(f"<bdi>{html.escape(tr.date(date.fromisoformat(p[k]), 'long'))}</bdi>"
                        for k in ("from", "to"))  # fmt: skip
    comma = "، " if lang == "ar" else ", "  # a queue filter may be a set (a supervisor's)
    filt = "<br>".join(
        f"{html.escape(tr._(DIM_NAMES[k]))} = "
        + comma.join(_bdi(value_name(tr, k, x, titles)) for x in ([v] if isinstance(v, str) else v))
        for k, v in figures["filters"].items()
    ) if figures["filters"] else html.escape(tr._("none"))  # fmt: skip
    colour = getattr(branding, "colour", None) or COLOUR
    org = ""
    if branding is not None:
        name = branding.name_ar if lang == "ar" else branding.name_en
        org = (f'<header class="brand">{_logo(branding.logo)}'
               f'<div class="org">{html.escape(name)}</div></header>')  # fmt: skip
    svg = charts(figures, tr, titles)
    title = tr._("Performance report")
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}" dir="{tr.direction}"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)} {html.escape(p['from'])} – {html.escape(p['to'])}</title>",
        f"<style>{CSS % {'colour': html.escape(colour)}}</style></head><body>",
        org,
        f"<h1>{html.escape(title)}</h1>",
        "<table class=summary><tbody>",
        "<tr>" + _h("th", tr._("Period")) + f"<td>{period}</td></tr>",
        "<tr>" + _h("th", tr._("Filters")) + f"<td>{filt}</td></tr>",
    ]
    t, backlog, routing = figures["totals"], figures["backlog"], figures["routing"]
    for label, n in (
        (tr._("Tickets opened"), t["opened"]),
        (tr._("Tickets resolved"), t["resolved"]),
        (tr._("Tickets reopened"), t["reopened"]),
        (tr._("Transfers"), t["transfers"]),
        (tr._("Backlog at the start"), backlog["start"]),
        (tr._("Backlog at the end"), backlog["end"]),
        (tr._("Tickets that fell to the default queue"), routing["default_queue"]),
    ):
        parts.append(f"<tr><th>{html.escape(label)}</th>{_cell(tr.number(n), tr)}</tr>")
    parts.append("</tbody></table>")

    parts.append('<div class="charts">')
    for key, caption in (
        ("volume", tr._("Tickets opened per day")),
        ("sla", tr._("SLA compliance per branch/region")),
        ("frt", tr._("First response time (business hours)")),
        ("csat", tr._("CSAT answers by score")),
    ):
        parts.append(f'<figure dir="ltr"><figcaption dir="{tr.direction}">'
                     f"{html.escape(caption)}</figcaption>{svg[key]}</figure>")  # fmt: skip
    parts.append("</div>")

    head = [tr._("Slice"), tr._("Value"), tr._("Opened"), tr._("Resolved"),
            tr._("First response p50 (business)"), tr._("First response p90 (business)"),
            tr._("Resolution p50 (business)"), tr._("First response SLA"),
            tr._("Resolution SLA"), tr._("Breached"), tr._("CSAT average"),
            tr._("Transfers")]  # fmt: skip
    parts.append(_h("h2", tr._("Figures by slice")) + "<table><thead><tr>")
    parts.append("".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>")
    for dim, value, r in slices(figures):
        name = value_name(tr, dim, value, titles) if dim != "total" else ""
        cells = [html.escape(tr._(DIM_NAMES[dim])), _bdi(name) if name else ""]
        nums = [tr.number(r["opened"]), tr.number(r["resolved"]), duration(tr, r["frt_p50_b"]),
                duration(tr, r["frt_p90_b"]), duration(tr, r["res_p50_b"]),
                share(tr, r["fr_compliance"]), share(tr, r["res_compliance"]),
                tr.number(r["breached"]),
                tr._("no data") if r["csat_avg"] is None else tr.number(r["csat_avg"]),
                tr.number(r["transfers"])]  # fmt: skip
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells)
                     + "".join(_cell(n, tr) for n in nums) + "</tr>")  # fmt: skip
    parts.append("</tbody></table>")

    rules = routing["top_rules"][:10]
    parts.append(_h("h2", tr._("Top routing rules")))
    if rules:
        parts.append("<table><thead><tr>" + _h("th", tr._("Rule")) + _h("th", tr._("Tickets"))
                     + "</tr></thead><tbody>")  # fmt: skip
        parts += [f"<tr><td>{_bdi(name)}</td>{_cell(tr.number(n), tr)}</tr>" for name, n in rules]
        parts.append("</tbody></table>")
    else:
        parts.append(_h("p", tr._("no data")))

    def day_cell(item: dict[str, Any]) -> str:
        return html.escape(tr.date(date.fromisoformat(item["day"]))) if item.get("day") else ""

    lists = (
        (tr._("Breached tickets"), figures["breached_tickets"],
         (tr._("Ticket"), tr._("Target"), tr._("Day")),
         lambda i: [_bdi(i.get("ticket", "")),
                    html.escape(tr._(TARGET_NAMES.get(i.get("target", ""), "unknown"))),
                    day_cell(i)]),
        (tr._("Tickets that fell to the default queue"),
         [{"ticket": t} for t in routing["default_queue_tickets"]], (tr._("Ticket"),),
         lambda i: [_bdi(i["ticket"])]),
        (tr._("CSAT comments"), figures["csat_comments"],
         (tr._("Ticket"), tr._("Score"), tr._("Comment")),
         lambda i: [_bdi(i.get("ticket", "")), html.escape(tr.number(int(i.get("score") or 0))),
                    _bdi(i.get("comment", ""))]),
    )  # fmt: skip
    for caption, items, header, cells_of in lists:
        if not items:
            continue
        parts.append(f"<h2>{html.escape(caption)}</h2><table><thead><tr>"
                     + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                     + "</tr></thead><tbody>")  # fmt: skip
        for item in items[:LISTED]:
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells_of(item)) + "</tr>")
        parts.append("</tbody></table>")
        if len(items) > LISTED:
            more = tr.ngettext("Only the first {n} entry is listed.",
                               "Only the first {n} entries are listed.", LISTED)  # fmt: skip
            parts.append(_h("p", more))
    parts.append("</body></html>")
    return "\n".join(x for x in parts if x)
