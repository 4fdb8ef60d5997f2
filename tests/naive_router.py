"""The straightforward evaluator: every enabled rule in order, every condition tested
one by one on the config objects themselves. No index, no automaton.

It is the reference the compiled Router is checked against (tests, bench/router.py):
same Facts, same semantics (`router.decide`), none of the machinery. A test oracle, so it
lives in tests/ and is not shipped in the product. Keyword and regex
patterns are compiled once up front so the comparison measures evaluation, not
compilation.
"""

from __future__ import annotations

import re
from typing import Any

from omnidesk.config import (
    Condition,
    KeywordCondition,
    QueueConfigFile,
    RegexCondition,
    SenderCondition,
)
from omnidesk.model import Decision, TraceStep
from omnidesk.text import compile_pattern, fold
from router.decide import assemble
from router.facts import Facts, fold_words

_FIELDS = {"subject": ("subject",), "text": ("text",), "any": ("subject", "text")}


class NaiveRouter:
    def __init__(self, cfg: QueueConfigFile) -> None:
        self.cfg = cfg
        self._word_res: dict[str, re.Pattern[str]] = {}
        self._folded: dict[str, str] = {}
        self._regexes: dict[tuple[str, bool], Any] = {}

    def _word_re(self, folded: str) -> re.Pattern[str]:
        pattern = self._word_res.get(folded)
        if pattern is None:
            pattern = re.compile(r"(?<!\w)" + re.escape(folded) + r"(?!\w)")
            self._word_res[folded] = pattern
        return pattern

    def _keyword_in(self, word: str, cond: KeywordCondition, facts: Facts) -> bool:
        folded = self._folded.get(word)
        if folded is None:
            folded = self._folded[word] = fold_words(word)
        if not folded:
            return False
        fields = {f for name in cond.in_ for f in _FIELDS[name]}
        for field in ("subject", "text"):
            if field not in fields:
                continue
            hay = facts.folded_subject if field == "subject" else facts.folded_text
            if folded not in hay:
                continue
            if cond.match == "substring" or self._word_re(folded).search(hay):
                return True
        return False

    def _keywords(self, cond: KeywordCondition, facts: Facts) -> bool:
        if cond.any and not any(self._keyword_in(w, cond, facts) for w in cond.any):
            return False
        return all(self._keyword_in(w, cond, facts) for w in cond.all)

    def _regex(self, cond: RegexCondition, facts: Facts) -> bool:
        key = (cond.pattern, cond.ignore_case)
        regex = self._regexes.get(key)
        if regex is None:
            regex = self._regexes[key] = compile_pattern(cond.pattern, ignore_case=cond.ignore_case)
        fields = {f for name in cond.in_ for f in _FIELDS[name]}
        return ("subject" in fields and bool(regex.search(facts.subject))) or (
            "text" in fields and bool(regex.search(facts.text))
        )

    def holds(self, cond: Condition, facts: Facts) -> bool:
        """Whether one `when` node holds: every key it sets must hold."""
        return (
            self._nested_hold(cond, facts)
            and _fields_hold(cond, facts)
            and (cond.sender is None or _sender_holds(cond.sender, facts))
            and (cond.keywords is None or self._keywords(cond.keywords, facts))
            and (cond.regex is None or self._regex(cond.regex, facts))
            and _folded_fields_hold(cond, facts)
        )

    def _nested_hold(self, cond: Condition, facts: Facts) -> bool:
        """The `all`, `any` and `not` keys."""
        if cond.all is not None and not all(self.holds(c, facts) for c in cond.all):
            return False
        if cond.any is not None and not any(self.holds(c, facts) for c in cond.any):
            return False
        return not (cond.not_ is not None and self.holds(cond.not_, facts))

    def route(self, facts: Facts) -> Decision:
        steps: list[TraceStep] = []
        matched = []
        for rule in self.cfg.rules:
            if not rule.enabled:
                continue
            ok = rule.when is None or self.holds(rule.when, facts)
            steps.append(TraceStep(rule=rule.id, matched=ok, reason=""))
            if ok:
                matched.append((rule.id, rule.then))
                if not rule.then.continue_:
                    break
        return assemble(matched, self.cfg.default, self.cfg.queues, steps)


def _fields_hold(cond: Condition, facts: Facts) -> bool:
    """The keys compared with a field as it is."""
    if cond.channel is not None and facts.channel not in cond.channel:
        return False
    if cond.account is not None and facts.account not in cond.account:
        return False
    if cond.segment is not None and facts.segment not in cond.segment:
        return False
    if cond.language is not None and facts.language not in cond.language:
        return False
    if cond.has_attachment is not None and facts.has_attachment != cond.has_attachment:
        return False
    if (
        cond.outside_business_hours is not None
        and facts.outside_business_hours != cond.outside_business_hours
    ):
        return False
    return not (cond.flag is not None and not any(f in facts.flags for f in cond.flag))


def _sender_holds(sender: SenderCondition, facts: Facts) -> bool:
    address_ok = any(a.strip().casefold() in facts.senders for a in sender.address)
    domain = facts.sender_domain
    domain_ok = bool(domain) and any(
        domain == d or domain.endswith("." + d)
        for d in (x.strip().casefold().lstrip("@") for x in sender.domain)
    )
    return address_ok or domain_ok


def _folded_fields_hold(cond: Condition, facts: Facts) -> bool:
    """The keys compared case- and space-folded: customer tags, region, service."""
    if cond.customer_tag is not None and not any(
        fold(t).strip() in facts.customer_tags for t in cond.customer_tag
    ):
        return False
    if cond.region is not None and facts.region not in [fold(r).strip() for r in cond.region]:
        return False
    return cond.service is None or facts.service in [fold(s).strip() for s in cond.service]
