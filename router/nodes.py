"""Compiled condition nodes: each tests Facts fast (`test`) or says why (`explain`).

Every node also states what any message it matches must have, so the router can skip
rules without trying them: `need_tokens` (at least one of these tokens must be among the
message's tokens: a keyword id that occurs in it as a substring anywhere, or an exact
field value such as ("account", "cr-mailbox"); see `Router.tokens`) and `need_channels`
(the channels it can match on). None means "no such requirement".
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

from router.facts import Facts
from router.keywords import FIELD_NAMES, SUBJECT, TEXT, Hits
from router.regexes import RegexBank

_T = TypeVar("_T", bound=Hashable)

Token = Hashable  # a keyword id (int) or a (field, value) tuple
TokenNeed = frozenset[Token] | None
ChannelNeed = frozenset[str] | None


class Ctx:
    """One message being routed: its facts, its keyword hits, its regex hits (on demand)."""

    __slots__ = ("_regex", "facts", "hits", "regexes")

    def __init__(self, facts: Facts, hits: Hits, regexes: RegexBank) -> None:
        self.facts = facts
        self.hits = hits
        self.regexes = regexes
        self._regex: dict[int, frozenset[int]] = {}

    def regex_hits(self, field: int) -> frozenset[int]:
        """Ids of the regexes found in one raw field; all of them in one pass, once."""
        found = self._regex.get(field)
        if found is None:
            text = self.facts.subject if field == SUBJECT else self.facts.text
            found = self._regex[field] = self.regexes.search(text)
        return found


class Node:
    __slots__ = ()

    def test(self, ctx: Ctx) -> bool:
        raise NotImplementedError

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        raise NotImplementedError

    def need_tokens(self) -> TokenNeed:
        return None

    def need_channels(self) -> ChannelNeed:
        return None


def _listing(values: Any) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


class Always(Node):
    """A rule without `when`: a catch-all."""

    __slots__ = ()

    def test(self, ctx: Ctx) -> bool:
        return True

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        return True, "no conditions (catch-all)"


class FieldIn(Node):
    """A single-valued fact (channel, account, segment, ...) is one of the listed values.

    `indexed`: the router files the rule under ("key", value) tokens (selective fields).
    """

    __slots__ = ("attr", "indexed", "key", "listed", "values")

    def __init__(
        self,
        key: str,
        attr: str,
        values: frozenset[Any],
        shown: Sequence[Any],
        indexed: bool = False,
    ) -> None:
        self.key, self.attr, self.values, self.indexed = key, attr, values, indexed
        self.listed = _listing(shown)  # built once: explain runs for every rule tried

    def test(self, ctx: Ctx) -> bool:
        return getattr(ctx.facts, self.attr) in self.values

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        value = getattr(ctx.facts, self.attr)
        ok = value in self.values
        shown = "(none)" if value is None else str(value)
        return ok, f"{self.key}: {shown} {'in' if ok else 'not in'} {self.listed}"

    def need_channels(self) -> ChannelNeed:
        return frozenset(str(v) for v in self.values) if self.key == "channel" else None

    def need_tokens(self) -> TokenNeed:
        return frozenset((self.key, v) for v in self.values) if self.indexed else None


class SetOverlap(Node):
    """A set-valued fact (customer tags, flags) has at least one of the listed values."""

    __slots__ = ("attr", "key", "listed", "values")

    def __init__(self, key: str, attr: str, values: frozenset[Any], shown: Sequence[Any]) -> None:
        self.key, self.attr, self.values = key, attr, values
        self.listed = _listing(shown)

    def test(self, ctx: Ctx) -> bool:
        return not self.values.isdisjoint(getattr(ctx.facts, self.attr))

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        common = self.values & getattr(ctx.facts, self.attr)
        if common:
            return True, f"{self.key}: has {_listing(sorted(map(str, common)))}"
        return False, f"{self.key}: none of {self.listed}"

    def need_tokens(self) -> TokenNeed:
        return frozenset((self.key, v) for v in self.values)


class BoolIs(Node):
    __slots__ = ("attr", "value")

    def __init__(self, attr: str, value: bool) -> None:
        self.attr, self.value = attr, value

    def test(self, ctx: Ctx) -> bool:
        return getattr(ctx.facts, self.attr) is self.value

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        actual = getattr(ctx.facts, self.attr)
        return actual is self.value, f"{self.attr}: is {str(actual).lower()}"


class Sender(Node):
    """Sender address is listed, or its email domain is a listed domain or under one."""

    __slots__ = ("addresses", "domains")

    def __init__(self, addresses: frozenset[str], domains: tuple[str, ...]) -> None:
        self.addresses, self.domains = addresses, domains

    def _domain_ok(self, domain: str) -> bool:
        return bool(domain) and any(domain == d or domain.endswith("." + d) for d in self.domains)

    def test(self, ctx: Ctx) -> bool:
        facts = ctx.facts
        return not self.addresses.isdisjoint(facts.senders) or self._domain_ok(facts.sender_domain)

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        facts = ctx.facts
        found = self.addresses & facts.senders
        if found:
            return True, f"sender.address: {min(found)} listed"
        if self._domain_ok(facts.sender_domain):
            return True, f"sender.domain: {facts.sender_domain} listed"
        return False, f"sender: {facts.sender_address or '(none)'} not listed"

    def need_tokens(self) -> TokenNeed:
        return frozenset(("address", a) for a in self.addresses) | frozenset(
            ("domain", d) for d in self.domains
        )


class Keywords(Node):
    """keywords: any of `any_` and all of `all_` occur in the chosen fields."""

    __slots__ = ("all_", "any_", "mask", "said_all", "said_none", "word")

    def __init__(
        self,
        any_: list[tuple[str, int]],
        all_: list[tuple[str, int]],
        mask: int,
        word: bool,
    ) -> None:
        self.any_, self.all_, self.mask, self.word = any_, all_, mask, word
        where = FIELD_NAMES[mask]
        self.said_none = f"keywords.any: none of {_listing(repr(w) for w, _ in any_)} in {where}"
        self.said_all = f"keywords.all: all of {_listing(repr(w) for w, _ in all_)} in {where}"

    def _found(self, hits: Hits) -> dict[int, int]:
        return hits.word if self.word else hits.substring

    def test(self, ctx: Ctx) -> bool:
        found, mask = self._found(ctx.hits), self.mask
        if self.any_:
            for _, kid in self.any_:
                if found.get(kid, 0) & mask:
                    break
            else:
                return False
        for _, kid in self.all_:  # noqa: SIM110 - hot path, no generator
            if not found.get(kid, 0) & mask:
                return False
        return True

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        found, mask = self._found(ctx.hits), self.mask
        where = FIELD_NAMES[mask]
        said: list[str] = []
        if self.any_:
            for word, kid in self.any_:
                bits = found.get(kid, 0) & mask
                if bits:
                    field = "subject" if bits & SUBJECT else "text"
                    said.append(f"keywords.any: matched {word!r} in {field}")
                    break
            else:
                return False, self.said_none
        for word, kid in self.all_:
            if not found.get(kid, 0) & mask:
                return False, f"keywords.all: {word!r} not in {where}"
        if self.all_:
            said.append(self.said_all)
        return True, "; ".join(said)

    def need_tokens(self) -> TokenNeed:
        if self.all_:  # each must occur, so any single one of them is a trigger
            return frozenset({self.all_[0][1]})
        return frozenset(kid for _, kid in self.any_)


class Regex(Node):
    """An RE2 pattern searched in the raw subject and/or text (answered by the bank)."""

    __slots__ = ("mask", "pattern", "rid")

    def __init__(self, rid: int, pattern: str, mask: int) -> None:
        self.rid, self.pattern, self.mask = rid, pattern, mask

    def test(self, ctx: Ctx) -> bool:
        rid, mask = self.rid, self.mask
        return bool(
            (mask & SUBJECT and rid in ctx.regex_hits(SUBJECT))
            or (mask & TEXT and rid in ctx.regex_hits(TEXT))
        )

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        rid, mask = self.rid, self.mask
        for bit in (SUBJECT, TEXT):
            if mask & bit and rid in ctx.regex_hits(bit):
                return True, f"regex: /{self.pattern}/ found in {FIELD_NAMES[bit]}"
        return False, f"regex: /{self.pattern}/ not in {FIELD_NAMES[mask]}"


class All(Node):
    __slots__ = ("children",)

    def __init__(self, children: list[Node]) -> None:
        self.children = children

    def test(self, ctx: Ctx) -> bool:
        for child in self.children:  # noqa: SIM110 - hot path, no generator
            if not child.test(ctx):
                return False
        return True

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        said = []
        for child in self.children:
            ok, why = child.explain(ctx)
            if not ok:
                return False, why
            said.append(why)
        return True, "; ".join(said)

    def need_tokens(self) -> TokenNeed:
        needs = [n for n in (c.need_tokens() for c in self.children) if n is not None]
        return min(needs, key=len) if needs else None

    def need_channels(self) -> ChannelNeed:
        needs = [n for n in (c.need_channels() for c in self.children) if n is not None]
        return frozenset.intersection(*needs) if needs else None


class AnyOf(Node):
    __slots__ = ("children",)

    def __init__(self, children: list[Node]) -> None:
        self.children = children

    def test(self, ctx: Ctx) -> bool:
        for child in self.children:  # noqa: SIM110 - hot path, no generator
            if child.test(ctx):
                return True
        return False

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        said = []
        for child in self.children:
            ok, why = child.explain(ctx)
            if ok:
                return True, f"any: {why}"
            said.append(why)
        return False, "any: none held (" + " | ".join(said) + ")"

    def _union(self, needs: list[frozenset[_T] | None]) -> frozenset[_T] | None:
        """What any child needs, together; None (read everything) when one needs that."""
        out: set[_T] = set()
        for need in needs:
            if need is None:
                return None
            out |= need
        return frozenset(out) if needs else None

    def need_tokens(self) -> TokenNeed:
        return self._union([c.need_tokens() for c in self.children])

    def need_channels(self) -> ChannelNeed:
        return self._union([c.need_channels() for c in self.children])


class Not(Node):
    __slots__ = ("child",)

    def __init__(self, child: Node) -> None:
        self.child = child

    def test(self, ctx: Ctx) -> bool:
        return not self.child.test(ctx)

    def explain(self, ctx: Ctx) -> tuple[bool, str]:
        ok, why = self.child.explain(ctx)
        return not ok, f"not ({why})"
