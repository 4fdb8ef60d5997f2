"""Helpers for router tests: small configs from rule dicts, Facts with defaults, and a
check that the compiled router and the naive evaluator agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from omnidesk.config import QueueConfigFile
from omnidesk.model import Channel, Decision, Inbound
from router import Facts, compile_router
from tests.naive_router import NaiveRouter

QUEUES = ("general", "cr", "tm", "complaints", "riyadh", "jeddah", "vip", "escalation")


def make_config(
    rules: list[dict[str, Any]],
    *,
    default: dict[str, Any] | None = None,
    queues: dict[str, dict[str, Any]] | None = None,
    sla_policies: tuple[str, ...] = ("standard", "fast", "vip"),
) -> QueueConfigFile:
    """A minimal valid QueueConfigFile around the given rules."""
    return QueueConfigFile.model_validate(
        {
            "sla_policies": {name: {"first_response": "4h"} for name in sla_policies},
            "queues": queues or {name: {"kind": "backoffice"} for name in QUEUES},
            "rules": rules,
            "default": default or {"queue": "general"},
        }
    )


def facts(channel: str | Channel = "web", **kwargs: Any) -> Facts:
    return Facts(channel=Channel(channel), **kwargs)


def inbound(channel: str = "web", **kwargs: Any) -> Inbound:
    kwargs.setdefault("account", "default")
    kwargs.setdefault("external_id", "x1")
    kwargs.setdefault("received_at", datetime(2026, 1, 4, 7, 0, tzinfo=UTC))
    return Inbound(channel=Channel(channel), **kwargs)


def route(rules: list[dict[str, Any]], f: Facts, **cfg: Any) -> Decision:
    """Route with the compiled router, asserting the naive evaluator agrees."""
    config = make_config(rules, **cfg)
    decision = compile_router(config).route(f)
    assert same(decision, NaiveRouter(config).route(f))
    return decision


def same(a: Decision, b: Decision) -> bool:
    return (a.queue, a.priority, a.tags, a.rule, a.rules, a.sla_policy) == (
        b.queue,
        b.priority,
        b.tags,
        b.rule,
        b.rules,
        b.sla_policy,
    )


def queue_of(rules: list[dict[str, Any]], f: Facts) -> str:
    return route(rules, f).queue
