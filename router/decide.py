"""How the actions of matching rules combine into one Decision.

Shared by the compiled router and the naive evaluator (tests/naive_router.py), so both
mean the same thing.

Rules are evaluated in config order; evaluation stops at the first matching rule
without `continue: true`. Over the rules that matched, in order:

- tags accumulate (each once, in first-seen order);
- priority is the highest any of them set, else the default route's priority;
- queue, sla_policy, auto_reply, segment and region: the last matching rule that set
  each one wins. As evaluation stops at the first non-continue match, that is the
  deciding rule's value when it sets one, else the last continue-rule's.
  `Decision.rule` is the id of the rule that set the queue (None: the default queue);
- when no matching rule set a queue, the queue is `default.queue`;
- when no matching rule set an SLA policy, it is the queue's `sla_policy`, then
  `default.sla_policy`, else "".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from omnidesk.config import DefaultRoute, QueueConfig, RuleAction
from omnidesk.model import Decision, TraceStep


def assemble(
    matched: Sequence[tuple[str, RuleAction]],
    default: DefaultRoute,
    queues: Mapping[str, QueueConfig],
    trace: list[TraceStep],
) -> Decision:
    """The Decision for the (rule id, action) pairs that matched, in evaluation order."""
    tags: list[str] = []
    priority = None
    queue = rule = sla = auto_reply = segment = region = None
    for rule_id, then in matched:
        for tag in then.tags:
            if tag not in tags:
                tags.append(tag)
        if then.priority is not None and (priority is None or then.priority.rank > priority.rank):
            priority = then.priority
        if then.queue is not None:
            queue, rule = then.queue, rule_id
        sla = then.sla_policy if then.sla_policy is not None else sla
        auto_reply = then.auto_reply if then.auto_reply is not None else auto_reply
        segment = then.segment if then.segment is not None else segment
        region = then.region if then.region is not None else region
    if queue is None:
        queue = default.queue
    if sla is None:
        queue_cfg = queues.get(queue)
        sla = (queue_cfg.sla_policy if queue_cfg else None) or default.sla_policy or ""
    return Decision(
        queue=queue,
        priority=priority if priority is not None else default.priority,
        sla_policy=sla,
        tags=tags,
        segment=segment,
        region=region,
        auto_reply=auto_reply,
        rule=rule,
        rules=[rule_id for rule_id, _ in matched],
        trace=trace,
    )
