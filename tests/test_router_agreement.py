"""The compiled router agrees with the naive evaluator on generated rule sets and messages.

Vocabulary is small and full of near-misses (Arabic prefixes, folded letter variants,
plural/singular, digits in two scripts) so keywords hit, almost hit and miss often.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnidesk.model import Channel, Flag, Language, Segment
from router import Facts, compile_router
from tests.naive_router import NaiveRouter
from tests.routerkit import QUEUES, make_config, same

WORDS = [
    "شكوى",
    "الشكاوى",
    "شكاوي",
    "سجل",
    "تجاري",
    "سجل تجاري",
    "السجل التجاري",
    "علامة",
    "علامه",
    "فاتورة",
    "أسعار",
    "اسعار",
    "إلغاء",
    "trademark",
    "trademarks",
    "Complaint",
    "complaint",
    "CR",
    "renewal",
    "١٠١٠",
    "1010",
    "cr_1",
    "riyadh",
    "جدة",
]
# mostly plain spaces; the rest glue words together (prefix, "_", tashkeel, tatweel) or not
SEPARATORS = [" "] * 8 + ["  ", "\n", ", ", "ال", "_", "-", "َ", "ـ", "؟ "]
PATTERNS = [r"\b10\d{2}\b", "^cr", "complaint|شكوى", r"[0-9]{4}", "سجل.*تجاري", r"trade\w+"]
ACCOUNTS = ["default", "cr-mailbox", "bot"]
SENDERS = ["", "ali@example.com", "x@mc.gov.sa", "+966500000001", "b@gov.sa"]
TAGS = ["vip", "media", "VIP"]
REGIONS = ["riyadh", "Riyadh", "جدة", "جده", "dammam"]

text = st.lists(
    st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), min_size=1, max_size=8
).map(lambda parts: "".join(w + s for w, s in parts))
some = st.lists


def leaf() -> st.SearchStrategy[dict[str, Any]]:
    fields = st.lists(st.sampled_from(["subject", "text", "any"]), min_size=1, max_size=2)
    keywords = st.fixed_dictionaries(
        {
            "any": some(st.sampled_from(WORDS), max_size=3),
            "all": some(st.sampled_from(WORDS), max_size=2),
        },
        optional={"in": fields, "match": st.sampled_from(["word", "substring"])},
    ).filter(lambda k: k["any"] or k["all"])
    regex = st.fixed_dictionaries(
        {"pattern": st.sampled_from(PATTERNS)},
        optional={"in": fields, "ignore_case": st.booleans()},
    )
    sender = st.fixed_dictionaries(
        {
            "address": some(st.sampled_from([*SENDERS[1:], "ALI@example.com"]), max_size=2),
            "domain": some(st.sampled_from(["gov.sa", "example.com", "sa"]), max_size=2),
        }
    ).filter(lambda s: s["address"] or s["domain"])
    short_keywords = st.fixed_dictionaries(
        {"keywords": some(st.sampled_from(WORDS), min_size=1, max_size=3)}
    )
    return st.one_of(
        short_keywords,
        short_keywords,
        st.fixed_dictionaries({"keywords": keywords}),
        st.fixed_dictionaries({"channel": some(st.sampled_from(list(Channel)), min_size=1)}),
        st.fixed_dictionaries({"account": some(st.sampled_from(ACCOUNTS), min_size=1)}),
        st.fixed_dictionaries({"segment": some(st.sampled_from(list(Segment)), min_size=1)}),
        st.fixed_dictionaries({"language": some(st.sampled_from(list(Language)), min_size=1)}),
        st.fixed_dictionaries({"sender": sender}),
        st.fixed_dictionaries({"keywords": keywords}),
        st.fixed_dictionaries({"keywords": some(st.sampled_from(WORDS), min_size=1, max_size=3)}),
        st.fixed_dictionaries({"regex": regex}),
        st.fixed_dictionaries({"has_attachment": st.booleans()}),
        st.fixed_dictionaries({"outside_business_hours": st.booleans()}),
        st.fixed_dictionaries({"customer_tag": some(st.sampled_from(TAGS), min_size=1)}),
        st.fixed_dictionaries({"region": some(st.sampled_from(REGIONS), min_size=1)}),
        st.fixed_dictionaries({"service": some(st.sampled_from(["cr", "tm"]), min_size=1)}),
        st.fixed_dictionaries({"flag": some(st.sampled_from(list(Flag)), min_size=1)}),
    )


def merge(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Several keys in one node (later keys of the same name replace earlier ones)."""
    out: dict[str, Any] = {}
    for node in nodes:
        out.update(node)
    return out


conditions = st.recursive(
    st.lists(leaf(), min_size=1, max_size=3).map(merge),
    lambda inner: st.one_of(
        st.fixed_dictionaries({"all": some(inner, max_size=3)}),
        st.fixed_dictionaries({"any": some(inner, max_size=3)}),
        st.fixed_dictionaries({"not": inner}),
        st.tuples(inner, leaf()).map(lambda p: merge(list(p))),
    ),
    max_leaves=6,
)
then = st.fixed_dictionaries(
    {},
    optional={
        "queue": st.sampled_from(QUEUES),
        "priority": st.sampled_from(["low", "normal", "high", "urgent"]),
        "sla_policy": st.sampled_from(["standard", "fast", "vip"]),
        "tags": some(st.sampled_from(["a", "b", "c"]), max_size=2),
        "continue": st.booleans(),
    },
)


@st.composite
def rule_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 8))
    return [
        {
            "id": f"r{i}",
            "enabled": draw(st.booleans()) or draw(st.booleans()),
            "when": draw(st.one_of(conditions, conditions, conditions, st.none())),
            "then": draw(then),
        }
        for i in range(n)
    ]


facts_st = st.builds(
    Facts,
    channel=st.sampled_from(list(Channel)),
    account=st.sampled_from(ACCOUNTS),
    segment=st.sampled_from(list(Segment)),
    language=st.sampled_from(list(Language)),
    sender_address=st.sampled_from(SENDERS),
    subject=text,
    text=text,
    has_attachment=st.booleans(),
    outside_business_hours=st.booleans(),
    customer_tags=st.frozensets(st.sampled_from(TAGS), max_size=2),
    region=st.none() | st.sampled_from(REGIONS),
    service=st.none() | st.sampled_from(["cr", "TM", "x"]),
    flags=st.frozensets(st.sampled_from(list(Flag)), max_size=2),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rule_sets(), messages=st.lists(facts_st, min_size=1, max_size=5))
def test_compiled_agrees_with_naive(rules: list[dict[str, Any]], messages: list[Facts]) -> None:
    cfg = make_config(rules)
    router, naive = compile_router(cfg), NaiveRouter(cfg)
    for f in messages:
        fast, slow = router.route(f), naive.route(f)
        assert same(fast, slow), (fast, slow)
        # every rule the compiled router tried, the naive one judged the same way
        judged = {s.rule: s.matched for s in slow.trace}
        for step in fast.trace:
            assert judged.get(step.rule, False) == step.matched, step
        # a rule the index skipped could not have matched
        tried = {s.rule for s in fast.trace}
        assert all(not m for rule, m in judged.items() if rule not in tried)
        assert same(router.route(f, trace=False), slow)


keyword_rule_sets = st.lists(
    st.fixed_dictionaries(
        {
            "when": st.fixed_dictionaries(
                {
                    "keywords": st.fixed_dictionaries(
                        {"any": some(st.sampled_from(WORDS), max_size=3)},
                        optional={
                            "all": some(st.sampled_from(WORDS), min_size=1, max_size=2),
                            "in": st.lists(
                                st.sampled_from(["subject", "text", "any"]), min_size=1, max_size=2
                            ),
                            "match": st.sampled_from(["word", "substring"]),
                        },
                    ).filter(lambda k: k["any"] or k.get("all"))
                },
                optional={"channel": some(st.sampled_from(list(Channel)), min_size=1, max_size=3)},
            ),
            "then": then,
        }
    ),
    min_size=1,
    max_size=10,
).map(lambda rules: [{"id": f"k{i}", **r} for i, r in enumerate(rules)])


@settings(max_examples=200, deadline=None)
@given(rules=keyword_rule_sets, messages=st.lists(facts_st, min_size=1, max_size=5))
def test_keyword_rules_agree(rules: list[dict[str, Any]], messages: list[Facts]) -> None:
    """Keyword-only rule sets: the automaton, word boundaries and the index under stress."""
    cfg = make_config(rules)
    router, naive = compile_router(cfg), NaiveRouter(cfg)
    for f in messages:
        assert same(router.route(f), naive.route(f))


@settings(max_examples=200, deadline=None)
@given(keyword=st.sampled_from(WORDS), hay=text, substring=st.booleans())
def test_single_keyword_agrees(keyword: str, hay: str, substring: bool) -> None:
    rules = [
        {
            "id": "k",
            "when": {"keywords": {"any": [keyword], "match": "substring" if substring else "word"}},
            "then": {"queue": "cr"},
        }
    ]
    cfg = make_config(rules)
    f = Facts(channel=Channel.WEB, text=hay)
    assert same(compile_router(cfg).route(f), NaiveRouter(cfg).route(f))
