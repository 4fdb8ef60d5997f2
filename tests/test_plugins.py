"""The daemon's plugin hooks: order, isolation of a failing hook, and the dashboard login."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, ClassVar

import pytest

from omnidesk.plugins import Plugin, Plugins, discover
from omnidesk.viewers import BadToken, NotSupervisor, Viewer


class Recorder(Plugin):
    def __init__(self, name: str, order: int, calls: list[str], fail: str = "") -> None:
        self.name = name  # type: ignore[misc]
        self.order = order  # type: ignore[misc]
        self.calls, self.fail = calls, fail

    def _hook(self, hook: str) -> None:
        self.calls.append(f"{self.name}.{hook}")
        if hook == self.fail:
            raise RuntimeError(f"{self.name} broke in {hook}")

    def attach(self, daemon: Any) -> None:
        self._hook("attach")

    def tickets_opened(self, tickets: list[Any]) -> None:
        self._hook("tickets_opened")

    def reload(self, loaded: Any) -> None:
        self._hook("reload")


def test_hooks_run_in_order_and_a_failing_hook_stops_no_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    plugins = Plugins(
        [Recorder("late", 300, calls), Recorder("early", 10, calls, fail="tickets_opened")]
    )
    plugins.attach(object())
    plugins.tickets_opened([])
    plugins.reload(object())  # type: ignore[arg-type]
    assert calls == [
        "early.attach",
        "late.attach",
        "early.tickets_opened",
        "late.tickets_opened",
        "early.reload",
        "late.reload",
    ]
    assert "plugin early: tickets_opened failed" in caplog.text


def test_a_plugin_that_failed_to_attach_gets_no_later_hook() -> None:
    calls: list[str] = []
    plugins = Plugins([Recorder("broken", 1, calls, fail="attach"), Recorder("ok", 2, calls)])
    plugins.attach(object())
    plugins.tickets_opened([])
    assert calls == ["broken.attach", "ok.attach", "ok.tickets_opened"]
    assert [p.name for p in plugins] == ["ok"]


class Supervisors(Plugin):
    name: ClassVar[str] = "supervisors"

    def authorize(self, token: str) -> Viewer | None:
        if token == "boss":
            return Viewer("boss", ("cr",))
        if token == "agent":
            raise NotSupervisor("not a supervisor")
        if token == "bug":
            raise KeyError(token)
        return None


def test_authorize_asks_the_plugins_then_the_operators_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMNIDESK_DASHBOARD_TOKEN", "operator-secret")
    authorize = Plugins([Supervisors()]).authorize
    assert authorize("boss") == Viewer("boss", ("cr",))
    with pytest.raises(NotSupervisor):  # a refusal is the answer, not a fault
        authorize("agent")
    assert authorize("operator-secret").queues is None
    with pytest.raises(BadToken):  # a plugin's bug falls through to the operator's check
        authorize("bug")


def test_the_built_in_plugins_are_entry_points_reports_before_agents() -> None:
    names = {point.name for point in entry_points(group="omnidesk.plugins")}
    assert {"reports", "agents"} <= names
    ordered = [p.name for p in Plugins(discover())]
    assert ordered.index("reports") < ordered.index("agents")
