"""Compile the config's rules once into a Router.

Each rule's `when` tree becomes a tree of nodes (cheap field tests first, keywords
next, regexes last). All keywords of all rules go into one automaton, all regexes into
RE2 sets. Rules are then
indexed per channel: a rule that needs one of some tokens (keywords, or exact values of
selective fields: account, service, customer tag, flag, sender address or domain) is
filed under each of them; the others ("always" rules) are tried for every message on
the channels they can match. So a message only tries rules whose tokens it carries.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from omnidesk.config import Condition, KeywordCondition, QueueConfigFile, RegexCondition
from omnidesk.model import Channel
from omnidesk.text import fold
from router.facts import fold_words
from router.keywords import FIELD_BITS, KeywordIndex
from router.match import CompiledRule, Router
from router.nodes import (
    All,
    Always,
    AnyOf,
    BoolIs,
    FieldIn,
    Keywords,
    Node,
    Not,
    Regex,
    Sender,
    SetOverlap,
)
from router.regexes import RegexBank


def _mask(fields: Sequence[str]) -> int:
    mask = 0
    for name in fields:
        mask |= FIELD_BITS[name]
    return mask


def _norm(value: str) -> str:
    return fold(value).strip()


class _Compiler:
    def __init__(self) -> None:
        self.keywords = KeywordIndex()
        self.regexes = RegexBank()

    def keyword_node(self, cond: KeywordCondition) -> Node:
        def ids(words: list[str]) -> list[tuple[str, int]]:
            return [(w, self.keywords.add(fold_words(w))) for w in words]

        return Keywords(ids(cond.any), ids(cond.all), _mask(cond.in_), cond.match == "word")

    def regex_node(self, cond: RegexCondition) -> Node:
        rid = self.regexes.add(cond.pattern, cond.ignore_case)
        return Regex(rid, cond.pattern, _mask(cond.in_))

    def node(self, cond: Condition) -> Node:
        """One `when` node: its keys must all hold, cheapest tested first."""
        parts = _field_nodes(cond)
        if cond.keywords is not None:
            parts.append(self.keyword_node(cond.keywords))
        if cond.regex is not None:
            parts.append(self.regex_node(cond.regex))
        if cond.not_ is not None:
            parts.append(Not(self.node(cond.not_)))
        if cond.any is not None:
            parts.append(AnyOf([self.node(c) for c in cond.any]))
        if cond.all is not None:
            parts.append(All([self.node(c) for c in cond.all]))
        return parts[0] if len(parts) == 1 else All(parts)


def _field_nodes(cond: Condition) -> list[Node]:
    """The nodes of a condition's keys that test the message's fields (no text search)."""
    parts: list[Node] = []
    for key in ("channel", "account", "segment", "language"):
        values = getattr(cond, key)
        if values is not None:
            parts.append(FieldIn(key, key, frozenset(values), values, key == "account"))
    for key in ("has_attachment", "outside_business_hours"):
        value = getattr(cond, key)
        if value is not None:
            parts.append(BoolIs(key, value))
    if cond.flag is not None:
        parts.append(SetOverlap("flag", "flags", frozenset(cond.flag), cond.flag))
    if cond.customer_tag is not None:
        tags = frozenset(_norm(t) for t in cond.customer_tag)
        parts.append(SetOverlap("customer_tag", "customer_tags", tags, cond.customer_tag))
    for key in ("region", "service"):
        values = getattr(cond, key)
        if values is not None:
            folded = frozenset(_norm(v) for v in values)
            parts.append(FieldIn(key, key, folded, values, key == "service"))
    if cond.sender is not None:
        addresses = frozenset(a.strip().casefold() for a in cond.sender.address)
        domains = tuple(d.strip().casefold().lstrip("@") for d in cond.sender.domain)
        parts.append(Sender(addresses, domains))
    return parts


def compile_router(cfg: QueueConfigFile) -> Router:
    """Compile the enabled rules of a validated config, in config order."""
    compiler = _Compiler()
    rules: list[CompiledRule] = []
    for rule in cfg.rules:
        if not rule.enabled:
            continue
        node = Always() if rule.when is None else compiler.node(rule.when)
        rules.append(CompiledRule(rule.id, node, rule.then))
    compiler.keywords.build()
    compiler.regexes.build()

    always: dict[str, list[int]] = {ch.value: [] for ch in Channel}
    by_token: dict[str, dict[Hashable, list[int]]] = {ch.value: {} for ch in Channel}
    for position, compiled in enumerate(rules):
        channels = compiled.node.need_channels()
        needed = compiled.node.need_tokens()
        for ch in always:
            if channels is not None and ch not in channels:
                continue
            if needed is None:
                always[ch].append(position)
            else:
                for token in needed:
                    if token != -1:  # an empty folded keyword never occurs
                        by_token[ch].setdefault(token, []).append(position)
    return Router(
        rules=rules,
        keywords=compiler.keywords,
        regexes=compiler.regexes,
        always={ch: tuple(v) for ch, v in always.items()},
        by_token={ch: {k: tuple(v) for k, v in m.items()} for ch, m in by_token.items()},
        default=cfg.default,
        queues=cfg.queues,
    )
