"""A Decision as human text, for `omnidesk route`."""

from __future__ import annotations

from omnidesk.model import Decision


def explain(decision: Decision) -> str:
    """Queue, rule and the trace, one rule tried per line (✓ matched, ✗ not)."""
    lines = [
        f"queue:      {decision.queue}",
        f"rule:       {decision.rule or '(default)'}",
        f"priority:   {decision.priority.value}",
        f"sla_policy: {decision.sla_policy or '(none)'}",
    ]
    if decision.tags:
        lines.append(f"tags:       {', '.join(decision.tags)}")
    if decision.segment is not None:
        lines.append(f"segment:    {decision.segment.value}")
    if decision.region is not None:
        lines.append(f"region:     {decision.region}")
    if decision.auto_reply is not None:
        lines.append(f"auto_reply: {decision.auto_reply}")
    if decision.trace:
        lines.append("why:")
        for step in decision.trace:
            mark = "✓" if step.matched else "✗"
            lines.append(f"  {mark} {step.rule}: {step.reason}")
    else:
        lines.append("why: no rule could apply; the default queue")
    return "\n".join(lines)
