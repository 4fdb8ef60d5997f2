"""The optional parts (`omnidesk[rabbitmq]`, `omnidesk[charts]`): used without their extra,
each says in one line which extra to install instead of a bare ImportError."""

from __future__ import annotations

import sys

import pytest

from omnidesk.errors import ConfigError, MissingExtra
from omnidesk.pipeline import make_broker
from omnidesk.reports.html import charts


def test_amqp_broker_without_pika_names_the_rabbitmq_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dramatiq.brokers.rabbitmq", None)
    with pytest.raises(ConfigError) as caught:
        make_broker("amqp://guest:guest@127.0.0.1:5672/%2F", "od-extras")
    [problem] = caught.value.problems
    assert problem.startswith("service.broker_url:")
    assert "pip install 'omnidesk[rabbitmq]'" in problem


def test_charts_without_matplotlib_names_the_charts_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtra, match=r"pip install 'omnidesk\[charts\]'") as caught:
        charts({}, None, {})  # type: ignore[arg-type]  # fails before it reads either
    assert caught.value.extra == "charts"
