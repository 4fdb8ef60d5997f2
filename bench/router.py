"""Benchmark: the compiled router against the naive evaluator on 1,000 rules.

Generates 1,000 rules (Arabic and English keywords, multi-word phrases, regexes,
field conditions; about 10 % without keywords) and 10,000 messages, routes every
message with both evaluators in the same run, asserts identical decisions (queue,
priority, tags, rule), and prints decisions/s for each and the ratio. Facts are built
once per message before timing: both evaluators take the same Facts. The compiled
router runs with its trace on, as the daemon uses it. Rates are per CPU second of this
process (the machine is shared); wall-clock rates are printed too.

    /work/venv/bin/python bench/router.py [--rules 1000] [--messages 10000] [--seed 7]

The last line is one JSON object: {"compiled_per_s", "naive_per_s", "ratio"}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnidesk.config import QueueConfigFile
from omnidesk.model import Channel, Flag, Language, Segment
from router import Facts, compile_router
from tests.naive_router import NaiveRouter

ARABIC_TERMS = [
    "سجل تجاري",
    "شكوى",
    "بلاغ",
    "تستر",
    "غش تجاري",
    "علامة تجارية",
    "تجديد",
    "إلغاء",
    "شطب",
    "اسم تجاري",
    "فاتورة",
    "ضمان",
    "استرجاع",
    "أسعار",
    "مخالفة",
    "متجر إلكتروني",
    "توثيق",
    "عقد تأسيس",
    "شركة",
    "مؤسسة",
    "فرع",
    "رخصة",
    "تعديل",
    "نشاط",
    "مستثمر",
    "وكالة",
    "الرياض",
    "جدة",
    "مكة",
    "المدينة",
    "الدمام",
    "أبها",
    "تبوك",
    "القصيم",
    "حائل",
    "جازان",
]
ENGLISH_TERMS = [
    "commercial registration",
    "complaint",
    "fraud",
    "trademark",
    "renewal",
    "cancel",
    "invoice",
    "warranty",
    "refund",
    "prices",
    "violation",
    "online store",
    "company",
    "branch",
    "license",
    "investor",
    "agency",
    "riyadh",
    "jeddah",
    "dammam",
    "makkah",
    "madinah",
    "abha",
    "password",
    "login",
    "payment",
    "certificate",
]
ARABIC_LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
LATIN_LETTERS = "abcdefghijklmnopqrstuvwxyz"
REGEXES = [
    r"\b10\d{8}\b",  # a CR number
    r"\b[12]\d{9}\b",  # a national id
    r"(?i)order\s*#?\d{5,}",
    r"سجل\s+رقم\s*\d+",
    r"\+?9665\d{8}",
    r"(?i)invoice\s+[A-Z]{2}-\d+",
]
QUEUES = [f"q{i}" for i in range(40)]
ACCOUNTS = [f"acct{i}" for i in range(30)]
REGIONS = ["riyadh", "jeddah", "makkah", "madinah", "dammam", "abha", "tabuk", "hail"]


def pseudo_word(rng: random.Random, letters: str) -> str:
    return "".join(rng.choice(letters) for _ in range(rng.randint(3, 7)))


def vocabulary(rng: random.Random) -> tuple[list[str], list[str]]:
    """Keyword phrases (real terms plus generated ones) and filler words."""
    words = [pseudo_word(rng, ARABIC_LETTERS) for _ in range(900)]
    words += [pseudo_word(rng, LATIN_LETTERS) for _ in range(900)]
    words = list(dict.fromkeys(words))
    keywords = ARABIC_TERMS + ENGLISH_TERMS + words[:1400]
    keywords += [f"{rng.choice(words)} {rng.choice(words)}" for _ in range(200)]  # phrases
    filler = [*words[1400:], "من", "في", "على", "the", "and", "please", "عن", "my", "help"]
    return keywords, filler


def make_rule(i: int, rng: random.Random, keywords: list[str]) -> dict[str, Any]:
    """One random rule; the draws from `rng` come in a fixed order, so a seed gives the
    same rules."""
    # no keywords in one rule of ten: field conditions only (always tried on their channels)
    when = field_when(rng) if rng.random() < 0.10 else keyword_when(rng, keywords)
    return {"id": f"r{i:04d}", "when": when, "then": random_then(rng)}


def field_when(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["account", "sender", "tag", "flag", "regex"])
    if kind == "account":
        return {"account": rng.choice(ACCOUNTS)}
    if kind == "sender":
        return {"sender": {"domain": [f"firm{rng.randint(0, 500)}.com.sa"]}}
    if kind == "tag":
        return {"customer_tag": [f"tag{rng.randint(0, 50)}"]}
    if kind == "flag":
        return {"flag": [rng.choice([Flag.BOUNCE, Flag.AUTO_REPLY])]}
    regex = rng.choice(REGEXES)
    return {"regex": regex, "channel": [rng.choice(list(Channel))]}


def keyword_when(rng: random.Random, keywords: list[str]) -> dict[str, Any]:
    kw: dict[str, Any] = {"any": rng.sample(keywords, rng.randint(1, 3))}
    if rng.random() < 0.15:
        kw["all"] = rng.sample(keywords, 1)
    if rng.random() < 0.2:
        kw["in"] = ["subject"]
    if rng.random() < 0.1:
        kw["match"] = "substring"
    when: dict[str, Any] = {"keywords": kw}
    if rng.random() < 0.4:
        when["channel"] = rng.sample(list(Channel), rng.randint(1, 3))
    if rng.random() < 0.2:
        when["language"] = [rng.choice([Language.AR, Language.EN, Language.MIXED])]
    if rng.random() < 0.2:
        when["segment"] = [rng.choice([Segment.CONSUMER, Segment.BUSINESS])]
    if rng.random() < 0.1:
        when["has_attachment"] = rng.random() < 0.5
    if rng.random() < 0.1:
        when["not"] = {"region": rng.sample(REGIONS, 2)}
    if rng.random() < 0.05:
        when["regex"] = rng.choice(REGEXES)
    if rng.random() < 0.05:
        when = {"any": [when, {"keywords": rng.sample(keywords, 1)}]}
    return when


def random_then(rng: random.Random) -> dict[str, Any]:
    then: dict[str, Any] = {"queue": rng.choice(QUEUES)}
    if rng.random() < 0.3:
        then["priority"] = rng.choice(["low", "high", "urgent"])
    if rng.random() < 0.3:
        then["tags"] = [f"t{rng.randint(0, 30)}"]
    if rng.random() < 0.1:  # a tagging rule that lets evaluation go on
        then = {"tags": [f"c{rng.randint(0, 30)}"], "continue": True}
    return then


def make_config(n_rules: int, rng: random.Random, keywords: list[str]) -> QueueConfigFile:
    return QueueConfigFile.model_validate(
        {
            "sla_policies": {"standard": {"first_response": "4h"}},
            "queues": {q: {"kind": "backoffice", "sla_policy": "standard"} for q in QUEUES},
            "rules": [make_rule(i, rng, keywords) for i in range(n_rules)],
            "default": {"queue": QUEUES[0]},
        }
    )


def make_facts(rng: random.Random, keywords: list[str], filler: list[str]) -> Facts:
    def words(n: int, keyword_share: float) -> str:
        out = [rng.choice(keywords if rng.random() < keyword_share else filler) for _ in range(n)]
        if rng.random() < 0.1:
            out.append(f"CR 10{rng.randint(10**7, 10**8 - 1)}")
        return " ".join(out)

    return Facts(
        channel=rng.choice(list(Channel)),
        account=rng.choice(ACCOUNTS),
        segment=rng.choice(list(Segment)),
        language=rng.choice(list(Language)),
        sender_address=f"user{rng.randint(0, 999)}@firm{rng.randint(0, 2000)}.com.sa",
        subject=words(rng.randint(2, 6), 0.05),
        text=words(rng.randint(15, 60), 0.02),
        has_attachment=rng.random() < 0.2,
        customer_tags=frozenset({f"tag{rng.randint(0, 400)}"}),
        region=rng.choice(REGIONS),
        flags=frozenset({Flag.AUTO_REPLY} if rng.random() < 0.02 else ()),
    )


def timed(fn: Any, items: list[Facts]) -> tuple[list[Any], float, float]:
    """Results, CPU seconds of this process, wall seconds.

    Rates use CPU time: this machine is shared with other jobs, and wall time would
    measure their load as much as ours. Wall time is printed alongside.
    """
    cpu, wall = time.process_time(), time.perf_counter()
    out = [fn(f) for f in items]
    return out, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    keywords, filler = vocabulary(rng)
    cfg = make_config(args.rules, rng, keywords)
    messages = [make_facts(rng, keywords, filler) for _ in range(args.messages)]

    start = time.perf_counter()
    router = compile_router(cfg)
    compile_s = time.perf_counter() - start
    naive = NaiveRouter(cfg)

    fast, fast_s, fast_wall = timed(router.route, messages)
    slow, slow_s, slow_wall = timed(naive.route, messages)
    for f, a, b in zip(messages, fast, slow, strict=True):
        key_a = (a.queue, a.priority, a.tags, a.rule)
        key_b = (b.queue, b.priority, b.tags, b.rule)
        assert key_a == key_b, f"disagree on {f}: {key_a} != {key_b}"

    n = len(messages)
    compiled_per_s, naive_per_s = n / fast_s, n / slow_s
    ruled = sum(d.rule is not None for d in fast)
    tried = sum(len(d.trace) for d in fast) / n
    print(f"{router!r}, compiled in {compile_s * 1000:.0f} ms")
    print(f"{n} messages: {ruled} routed by a rule, {n - ruled} to the default queue")
    naive_tried = sum(len(d.trace) for d in slow) / n
    print(f"rules tried per message: compiled {tried:.1f}, naive {naive_tried:.1f}")
    print(
        f"compiled: {compiled_per_s:,.0f} decisions/s ({fast_s * 1e6 / n:.1f} µs CPU each;"
        f" wall {n / fast_wall:,.0f}/s)"
    )
    print(
        f"naive:    {naive_per_s:,.0f} decisions/s ({slow_s * 1e6 / n:.1f} µs CPU each;"
        f" wall {n / slow_wall:,.0f}/s)"
    )
    print(f"ratio:    {compiled_per_s / naive_per_s:.1f}x; all {n} decisions identical")
    print(
        json.dumps(
            {
                "compiled_per_s": round(compiled_per_s),
                "naive_per_s": round(naive_per_s),
                "ratio": round(compiled_per_s / naive_per_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
