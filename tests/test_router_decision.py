"""Rule order, `continue`, the default route, SLA fallback, the trace and its text."""

from __future__ import annotations

from omnidesk.model import Priority, Segment
from router import compile_router, explain
from tests.routerkit import facts, make_config, route

COMPLAINT = facts("email", subject="شكوى", text="I have a complaint about prices")


def test_first_match_wins_in_config_order() -> None:
    rules = [
        {"id": "a", "when": {"channel": "web"}, "then": {"queue": "tm"}},
        {"id": "b", "when": {"keywords": ["complaint"]}, "then": {"queue": "complaints"}},
        {"id": "c", "when": {"channel": "email"}, "then": {"queue": "cr"}},
    ]
    d = route(rules, COMPLAINT)
    assert (d.queue, d.rule, d.rules) == ("complaints", "b", ["b"])


def test_continue_accumulates_then_a_later_rule_decides() -> None:
    rules = [
        {"id": "vip", "when": {"channel": "email"}, "then": {"tags": ["vip"], "continue": True}},
        {
            "id": "urgent",
            "when": {"keywords": ["شكوى"]},
            "then": {"priority": "urgent", "tags": ["complaint", "vip"], "continue": True},
        },
        {"id": "c", "when": {"keywords": ["complaint"]}, "then": {"queue": "complaints"}},
        {"id": "never", "when": {"channel": "email"}, "then": {"queue": "cr", "tags": ["x"]}},
    ]
    d = route(rules, COMPLAINT)
    assert (d.queue, d.rule, d.priority) == ("complaints", "c", Priority.URGENT)
    assert d.tags == ["vip", "complaint"]
    assert d.rules == ["vip", "urgent", "c"]


def test_highest_priority_wins_even_if_the_decider_sets_a_lower_one() -> None:
    rules = [
        {"id": "a", "then": {"priority": "high", "continue": True}},
        {"id": "b", "then": {"queue": "cr", "priority": "low"}},
    ]
    assert route(rules, COMPLAINT).priority == Priority.HIGH


def test_only_continue_rules_matched_last_queue_wins() -> None:
    rules = [
        {"id": "a", "when": {"channel": "email"}, "then": {"queue": "cr", "continue": True}},
        {"id": "b", "when": {"channel": "email"}, "then": {"queue": "tm", "continue": True}},
        {"id": "c", "when": {"channel": "email"}, "then": {"tags": ["t"], "continue": True}},
        {"id": "d", "when": {"channel": "web"}, "then": {"queue": "riyadh"}},
    ]
    d = route(rules, COMPLAINT)
    assert (d.queue, d.rule, d.rules, d.tags) == ("tm", "b", ["a", "b", "c"], ["t"])


def test_non_continue_rule_without_queue_stops_but_keeps_earlier_queue() -> None:
    rules = [
        {"id": "a", "then": {"queue": "cr", "continue": True}},
        {"id": "b", "then": {"tags": ["stop"]}},
        {"id": "c", "then": {"queue": "tm"}},
    ]
    d = route(rules, COMPLAINT)
    assert (d.queue, d.rule, d.rules, d.tags) == ("cr", "a", ["a", "b"], ["stop"])


def test_default_route_when_nothing_matches() -> None:
    rules = [{"id": "a", "when": {"channel": "web"}, "then": {"queue": "cr"}}]
    default = {"queue": "general", "priority": "low", "sla_policy": "standard"}
    d = route(rules, COMPLAINT, default=default)
    assert (d.queue, d.rule, d.rules, d.priority, d.sla_policy) == (
        "general",
        None,
        [],
        Priority.LOW,
        "standard",
    )


def test_segment_region_auto_reply_last_set_wins() -> None:
    rules = [
        {"id": "a", "then": {"segment": "consumer", "region": "riyadh", "continue": True}},
        {"id": "b", "then": {"queue": "cr", "segment": "business", "auto_reply": "ack"}},
    ]
    d = route(rules, COMPLAINT)
    assert (d.segment, d.region, d.auto_reply) == (Segment.BUSINESS, "riyadh", "ack")


def test_sla_policy_fallback_rule_then_queue_then_default() -> None:
    queues = {
        "cr": {"kind": "backoffice", "sla_policy": "fast"},
        "tm": {"kind": "backoffice"},
        "general": {"kind": "backoffice"},
    }
    default = {"queue": "general", "sla_policy": "standard"}

    def sla(then: dict[str, object]) -> str:
        rules = [{"id": "a", "then": then}]
        return route(rules, COMPLAINT, queues=queues, default=default).sla_policy

    assert sla({"queue": "cr", "sla_policy": "vip"}) == "vip"
    assert sla({"queue": "cr"}) == "fast"
    assert sla({"queue": "tm"}) == "standard"
    no_default = route([], COMPLAINT, queues=queues, default={"queue": "tm"})
    assert no_default.sla_policy == ""


def test_disabled_rules_are_not_tried() -> None:
    rules = [
        {"id": "off", "enabled": False, "then": {"queue": "cr"}},
        {"id": "on", "then": {"queue": "tm"}},
    ]
    d = route(rules, COMPLAINT)
    assert (d.queue, [s.rule for s in d.trace]) == ("tm", ["on"])


def test_trace_lists_tried_rules_with_the_deciding_condition() -> None:
    rules = [
        {"id": "tg", "when": {"channel": ["telegram", "web"]}, "then": {"queue": "tm"}},
        {"id": "tm", "when": {"keywords": ["علامة تجارية"]}, "then": {"queue": "tm"}},
        {
            "id": "email-no-kw",
            "when": {"channel": "email", "not": {"has_attachment": False}},
            "then": {"queue": "riyadh"},
        },
        {
            "id": "kw",
            "when": {"keywords": {"any": ["سجل تجاري"], "in": ["subject"]}},
            "then": {"queue": "cr"},
        },
    ]
    cfg = make_config(rules)
    router = compile_router(cfg)
    f = facts("email", subject="طلب سجل تجاري", text="hello")
    d = router.route(f)
    steps = [(s.rule, s.matched, s.reason) for s in d.trace]
    # "tg" cannot match an email and "tm" wants a keyword the message lacks: neither is tried.
    assert steps == [
        ("email-no-kw", False, "not (has_attachment: is false)"),
        ("kw", True, "keywords.any: matched 'سجل تجاري' in subject"),
    ]
    assert d.rule == "kw"
    text = explain(d)
    assert "queue:      cr" in text and "rule:       kw" in text
    assert "✓ kw: keywords.any: matched 'سجل تجاري' in subject" in text
    assert "✗ email-no-kw" in text


def test_trace_reasons_for_field_failures() -> None:
    rules = [
        {"id": "ch", "when": {"channel": ["email", "web"], "keywords": ["x"]}, "then": {}},
        {"id": "kw", "when": {"keywords": {"all": ["x", "zz"]}}, "then": {}},
        {"id": "any", "when": {"any": [{"region": "riyadh"}, {"keywords": ["x"]}]}, "then": {}},
    ]
    d = compile_router(make_config(rules)).route(facts("telegram", text="x y"))
    reasons = {s.rule: s.reason for s in d.trace}
    assert reasons["kw"] == "keywords.all: 'zz' not in subject/text"
    assert reasons["any"] == "any: keywords.any: matched 'x' in text"
    assert "ch" not in reasons  # the channel index ruled it out
    d = compile_router(make_config(rules)).route(facts("web", text="x y"))
    assert d.trace[0].reason == "channel: web in [email, web]; keywords.any: matched 'x' in text"
    assert d.rules == ["ch"]


def test_route_without_trace_gives_the_same_decision() -> None:
    rules = [
        {"id": "a", "when": {"keywords": ["complaint"]}, "then": {"tags": ["c"], "continue": True}},
        {"id": "b", "when": {"regex": "prices?"}, "then": {"queue": "tm"}},
    ]
    router = compile_router(make_config(rules))
    full, bare = router.route(COMPLAINT), router.route(COMPLAINT, trace=False)
    assert bare.trace == [] and len(full.trace) == 2
    assert (full.queue, full.tags, full.rules) == (bare.queue, bare.tags, bare.rules)


def test_account_and_sender_rules_are_only_tried_when_they_can_match() -> None:
    rules = [
        {"id": "acct", "when": {"account": "cr-mailbox"}, "then": {"queue": "cr"}},
        {"id": "gov", "when": {"sender": {"domain": ["gov.sa"]}}, "then": {"queue": "vip"}},
        {"id": "re", "when": {"regex": r"\b10\d{8}\b"}, "then": {"queue": "tm"}},
    ]
    router = compile_router(make_config(rules))
    d = router.route(facts("email", account="info", sender_address="a@mc.gov.sa"))
    assert [(s.rule, s.matched, s.reason) for s in d.trace] == [
        ("gov", True, "sender.domain: mc.gov.sa listed")
    ]
    d = router.route(facts("email", account="info", text="CR 1010123456"))
    assert [(s.rule, s.reason) for s in d.trace] == [("re", r"regex: /\b10\d{8}\b/ found in text")]


def test_many_regexes_across_re2_sets() -> None:
    rules = [
        {"id": f"r{i}", "when": {"regex": f"code{i}\\b"}, "then": {"queue": "cr"}}
        for i in range(40)
    ]
    for i in (0, 17, 39):
        d = route(rules, facts(text=f"my CODE{i} please"))
        assert d.rule == f"r{i}"
    assert route(rules, facts(text="code40")).rule is None
