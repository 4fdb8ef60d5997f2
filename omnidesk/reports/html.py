"""The report as one self-contained, printable HTML page with charts.

Charts are matplotlib figures saved as inline SVG with ``svg.fonttype = none``: their text
stays text, so the browser shapes Arabic labels and the page prints sharp. The page carries
`lang`/`dir` (``--lang ar`` gives a right-to-left page); every name that may be Arabic sits
in a ``<bdi>`` so mixed Arabic/English lines keep their order.
"""

from __future__ import annotations

import html
import io
from typing import Any

from omnidesk.reports.render import duration, share, slices
from omnidesk.text import display_safe

LABELS = {
    "en": {
        "title": "Performance report", "period": "Period", "filters": "Filters",
        "volume": "Tickets opened per day", "sla": "SLA compliance per branch/region",
        "frt": "First response time (business hours)", "csat": "CSAT answers by score",
        "slices": "Figures by slice", "breached": "Breached tickets",
        "defaults": "Tickets that fell to the default queue", "comments": "CSAT comments",
        "none": "none", "rules": "Top routing rules", "backlog": "Backlog",
    },
    "ar": {
        "title": "تقرير الأداء", "period": "الفترة", "filters": "عوامل التصفية",
        "volume": "التذاكر المفتوحة يومياً", "sla": "الالتزام باتفاقية مستوى الخدمة لكل فرع/منطقة",
        "frt": "زمن الرد الأول (ساعات العمل)", "csat": "تقييمات رضا العملاء",
        "slices": "الأرقام حسب التصنيف", "breached": "التذاكر المتجاوزة",
        "defaults": "تذاكر وصلت إلى الطابور الافتراضي", "comments": "تعليقات العملاء",
        "none": "لا يوجد", "rules": "أكثر قواعد التوجيه استخداماً", "backlog": "المتراكم",
    },
}  # fmt: skip

CSS = """
body { font-family: "Noto Sans", "Noto Naskh Arabic", "DejaVu Sans", sans-serif; margin: 2em;
       color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #bbb; padding: .2em .5em; text-align: start; }
td.n { text-align: end; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; width: 30em; } figure svg { width: 100%; height: auto; }
@media print {
  body { margin: 0; font-size: 10pt; }
  .charts { display: block; }
  figure, table { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    for ax in fig.axes:  # counts never go below 0, and an empty chart still has an axis
        _, high = ax.get_ylim()
        ax.set_ylim(0, max(high, 1))
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def charts(figures: dict[str, Any], lang: str) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})
    out = {}
    days = list(figures["volume"]["opened_by_day"])
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.bar(range(len(days)), list(figures["volume"]["opened_by_day"].values()), color="#3b7dd8")
    step = max(1, len(days) // 8)
    ax.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]])
    ax.set_ylabel("tickets")
    out["volume"] = _svg(fig)

    regions = figures["by"]["region"]
    names = [r or "-" for r in regions]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    for i, target in enumerate(("first_response", "resolution")):
        values = [100 * (b["sla"][target]["compliance"] or 0) for b in regions.values()]
        ax.bar([x + i * 0.4 for x in range(len(names))], values, width=0.4, label=target)
    ax.set_xticks([x + 0.2 for x in range(len(names))], names, rotation=30, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("% met")
    ax.legend(fontsize=7)
    out["sla"] = _svg(fig)

    hist = figures["totals"]["first_response"]["business"]["histogram"]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    labels = ["≤" + duration(int(b)) if b != "inf" else ">30d" for b in hist]
    ax.bar(range(len(hist)), list(hist.values()), color="#5aa469")
    ax.set_xticks(range(len(hist)), labels, rotation=60, fontsize=7)
    ax.set_ylabel("tickets")
    out["frt"] = _svg(fig)

    dist = figures["totals"]["csat"]["distribution"]
    fig, ax = plt.subplots(figsize=(4, 2.6))
    ax.bar(list(dist), list(dist.values()), color="#e0a030")
    ax.set_xlabel("score")
    out["csat"] = _svg(fig)
    return out


def _bdi(text: Any) -> str:
    """Text from outside (CSAT comments, names) isolated in its own direction, escaped, and
    without bidi overrides or control characters (display_safe)."""
    return f'<bdi dir="auto">{html.escape(display_safe(str(text)))}</bdi>'


def as_html(figures: dict[str, Any], lang: str = "en", titles: dict[str, str] | None = None) -> str:
    """The page; `titles` maps queue ids to their (often Arabic) titles."""
    lab = LABELS.get(lang, LABELS["en"])
    direction = "rtl" if lang == "ar" else "ltr"
    titles = titles or {}
    p = figures["period"]
    filt = ", ".join(f"{k}={v}" for k, v in figures["filters"].items()) or lab["none"]
    svg = charts(figures, lang)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}" dir="{direction}"><head><meta charset="utf-8">',
        f"<title>{html.escape(lab['title'])} {p['from']} – {p['to']}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(lab['title'])}</h1>",
        f'<p>{lab["period"]}: <bdi dir="ltr">{p["from"]} – {p["to"]}</bdi>. '
        f"{lab['filters']}: {_bdi(filt)}. {lab['backlog']}: "
        f"{figures['backlog']['start']} → {figures['backlog']['end']}</p>",
        '<div class="charts">',
    ]
    for key in ("volume", "sla", "frt", "csat"):
        parts.append(f'<figure lang="en" dir="ltr"><figcaption lang="{lang}" dir="{direction}">'
                     f"{html.escape(lab[key])}</figcaption>{svg[key]}</figure>")  # fmt: skip
    parts.append("</div>")
    parts.append(f"<h2>{html.escape(lab['slices'])}</h2><table><thead><tr>")
    head = ["slice", "value", "opened", "resolved", "FRT p50 (biz)", "FRT p90 (biz)",
            "RES p50 (biz)", "FR SLA", "RES SLA", "breached", "CSAT"]  # fmt: skip
    parts.append("".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>")
    for dim, value, r in slices(figures):
        name = titles.get(value, value) if dim == "queue" else value
        cells = [dim, _bdi(name or "-")]
        nums = [r["opened"], r["resolved"], duration(r["frt_p50_b"]), duration(r["frt_p90_b"]),
                duration(r["res_p50_b"]), share(r["fr_compliance"]),
                share(r["res_compliance"]), r["breached"],
                "-" if r["csat_avg"] is None else r["csat_avg"]]  # fmt: skip
        parts.append(
            "<tr>" + "".join(f"<td>{c}</td>" for c in cells)
            + "".join(f'<td class="n">{html.escape(str(n))}</td>' for n in nums) + "</tr>"
        )  # fmt: skip
    parts.append("</tbody></table>")
    rules = figures["routing"]["top_rules"][:10]
    if rules:
        parts.append(f"<h2>{html.escape(lab['rules'])}</h2><ul>")
        parts += [f"<li>{_bdi(name)}: {n}</li>" for name, n in rules]
        parts.append("</ul>")
    for key, items, fields in (
        ("breached", figures["breached_tickets"], ("ticket", "target", "day")),
        ("defaults", [{"ticket": t} for t in figures["routing"]["default_queue_tickets"]],
         ("ticket",)),
        ("comments", figures["csat_comments"], ("ticket", "score", "comment")),
    ):  # fmt: skip
        if items:
            parts.append(f"<h2>{html.escape(lab[key])}</h2><table><tbody>")
            for item in items[:100]:
                parts.append("<tr>" + "".join(f"<td>{_bdi(item.get(f, ''))}</td>" for f in fields)
                             + "</tr>")  # fmt: skip
            parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts)
