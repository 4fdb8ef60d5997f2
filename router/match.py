"""The compiled Router: candidate rules from the index, tried in config order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from omnidesk.config import DefaultRoute, QueueConfig, RuleAction
from omnidesk.model import Decision, TraceStep
from router.decide import assemble
from router.facts import Facts
from router.keywords import KeywordIndex
from router.nodes import Ctx, Node


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    node: Node
    then: RuleAction


class Router:
    """Routes Facts to a Decision; build it with `compile_router(cfg)`.

    Only candidate rules are tried: the message's channel's "always" rules plus the
    rules filed under a keyword the message contains. A rule that is not a candidate
    cannot match, so skipping it changes nothing but the trace, which lists the rules
    tried (in order, matched or not, and the condition that decided). Semantics of
    combining matches: see `router.decide`.
    """

    def __init__(
        self,
        *,
        rules: list[CompiledRule],
        keywords: KeywordIndex,
        always: dict[str, tuple[int, ...]],
        by_keyword: dict[str, dict[int, tuple[int, ...]]],
        default: DefaultRoute,
        queues: Mapping[str, QueueConfig],
    ) -> None:
        self.rules = rules
        self._keywords = keywords
        self._always = always
        self._by_keyword = by_keyword
        self.default = default
        self.queues = queues

    def __repr__(self) -> str:
        return f"<Router {len(self.rules)} rules, {len(self._keywords)} keywords>"

    def candidates(self, facts: Facts, ctx: Ctx) -> list[int]:
        """Positions of the rules that may match, in config order."""
        channel = facts.channel.value
        always = self._always[channel]
        by_keyword = self._by_keyword[channel]
        found: set[int] = set(always)
        for kid in ctx.hits.substring:
            positions = by_keyword.get(kid)
            if positions:
                found.update(positions)
        return sorted(found)

    def route(self, facts: Facts, *, trace: bool = True) -> Decision:
        """The decision for one message; `trace=False` skips the explanations."""
        ctx = Ctx(facts, self._keywords.scan(facts.folded_subject, facts.folded_text))
        steps: list[TraceStep] = []
        matched: list[tuple[str, RuleAction]] = []
        rules = self.rules
        for position in self.candidates(facts, ctx):
            rule = rules[position]
            if trace:
                ok, why = rule.node.explain(ctx)
                steps.append(TraceStep(rule=rule.id, matched=ok, reason=why))
            else:
                ok = rule.node.test(ctx)
            if ok:
                matched.append((rule.id, rule.then))
                if not rule.then.continue_:
                    break
        return assemble(matched, self.default, self.queues, steps)
