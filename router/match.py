"""The compiled Router: candidate rules from the index, tried in config order."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from omnidesk.config import DefaultRoute, QueueConfig, RuleAction
from omnidesk.model import Decision, TraceStep
from router.decide import assemble
from router.facts import Facts
from router.keywords import KeywordIndex
from router.nodes import Ctx, Node
from router.regexes import RegexBank


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    node: Node
    then: RuleAction


class Router:
    """Routes Facts to a Decision; build it with `compile_router(cfg)`.

    Only candidate rules are tried: the message's channel's "always" rules plus the
    rules filed under a token the message carries (a keyword it contains, its account,
    its sender, ...). A rule that is not a candidate
    cannot match, so skipping it changes nothing but the trace, which lists the rules
    tried (in order, matched or not, and the condition that decided). Semantics of
    combining matches: see `router.decide`.
    """

    def __init__(
        self,
        *,
        rules: list[CompiledRule],
        keywords: KeywordIndex,
        regexes: RegexBank,
        always: dict[str, tuple[int, ...]],
        by_token: dict[str, dict[Hashable, tuple[int, ...]]],
        default: DefaultRoute,
        queues: Mapping[str, QueueConfig],
    ) -> None:
        self.rules = rules
        self._keywords = keywords
        self._regexes = regexes
        self._always = always
        self._by_token = by_token
        self.default = default
        self.queues = queues

    def __repr__(self) -> str:
        return f"<Router {len(self.rules)} rules, {len(self._keywords)} keywords>"

    @staticmethod
    def tokens(facts: Facts, ctx: Ctx) -> list[Hashable]:
        """What the message carries that rules are filed under (see `router.nodes`)."""
        tokens: list[Hashable] = list(ctx.hits.substring)
        tokens.append(("account", facts.account))
        if facts.service:
            tokens.append(("service", facts.service))
        tokens.extend(("customer_tag", t) for t in facts.customer_tags)
        tokens.extend(("flag", f) for f in facts.flags)
        tokens.extend(("address", s) for s in facts.senders)
        labels = facts.sender_domain.split(".") if facts.sender_domain else []
        tokens.extend(("domain", ".".join(labels[i:])) for i in range(len(labels)))
        return tokens

    def candidates(self, facts: Facts, ctx: Ctx) -> list[int]:
        """Positions of the rules that may match, in config order."""
        channel = facts.channel.value
        by_token = self._by_token[channel]
        found: set[int] = set(self._always[channel])
        for token in self.tokens(facts, ctx):
            positions = by_token.get(token)
            if positions:
                found.update(positions)
        return sorted(found)

    def route(self, facts: Facts, *, trace: bool = True) -> Decision:
        """The decision for one message; `trace=False` skips the explanations."""
        hits = self._keywords.scan(facts.folded_subject, facts.folded_text)
        ctx = Ctx(facts, hits, self._regexes)
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
