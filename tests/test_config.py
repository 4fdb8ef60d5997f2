"""queue_config.yaml validation: every problem named as FILE:LINE: key: message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from omnidesk.config import Action, Condition, QueueConfigFile, parse_duration
from omnidesk.configload import load_config, parse_config
from omnidesk.errors import ConfigError

MINIMAL = Path(__file__).parent / "fixtures" / "config" / "minimal.yaml"


def problems_of(text: str, name: str = "cfg.yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path(name))
    return info.value.problems


def edit(old: str, new: str) -> str:
    text = MINIMAL.read_text()
    assert old in text, old
    return text.replace(old, new, 1)


def test_minimal_config_loads_with_a_national_calendar() -> None:
    loaded = load_config(MINIMAL)
    assert set(loaded.data.queues) == {"riyadh", "escalation"}
    assert "national" in loaded.data.calendars
    assert loaded.warnings == []


def test_unknown_key_is_named_with_its_line() -> None:
    text = edit("riyadh: {kind: branch,", "riyadh: {colour: red, kind: branch,")
    line = text.splitlines().index(next(x for x in text.splitlines() if "colour" in x)) + 1
    assert problems_of(text) == [f"cfg.yaml:{line}: queues.riyadh.colour: unknown key"]


def test_missing_queue_bad_regex_and_unknown_key_are_all_reported() -> None:
    text = edit("then: {queue: riyadh}", "then: {queue: nowhere}")
    text = text.replace("escalation: {kind: escalation}", "escalation: {kind: escalation, x: 1}")
    text = text.replace("        - region: riyadh", '        - regex: "(unclosed"')
    problems = problems_of(text)
    assert len(problems) == 3, problems
    assert any(
        re.fullmatch(r"cfg\.yaml:\d+: queues\.escalation\.x: unknown key", p) for p in problems
    )
    assert any("rules[0].when.any[1].regex.pattern: bad regular expression" in p for p in problems)
    assert any("rules[0].then.queue: queue 'nowhere' does not exist" in p for p in problems)
    # problems come in file order
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)


def test_bad_yaml_names_the_line() -> None:
    text = MINIMAL.read_text() + "rules: [\n"
    (problem,) = problems_of(text)
    assert problem.startswith("cfg.yaml:")
    assert "(yaml)" in problem


def test_duplicate_keys_are_rejected() -> None:
    text = edit(
        "  escalation: {kind: escalation}",
        "  escalation: {kind: escalation}\n  riyadh: {kind: branch}",
    )
    (problem,) = problems_of(text)
    assert "(yaml)" in problem and "duplicate" in problem.lower()


def test_cross_references_are_checked() -> None:
    text = edit("sla_policy: standard}", "sla_policy: nope, calendar: moon, escalates_to: void}")
    problems = problems_of(text)
    assert any("queues.riyadh.sla_policy: SLA policy 'nope' does not exist" in p for p in problems)
    assert any("queues.riyadh.calendar: calendar 'moon' does not exist" in p for p in problems)
    assert any("queues.riyadh.escalates_to: queue 'void' does not exist" in p for p in problems)


def test_ladder_move_to_must_be_a_queue() -> None:
    problems = problems_of(edit("{move_to: escalation}", "{move_to: limbo}"))
    assert any("ladder[1].actions[0].move_to: queue 'limbo' does not exist" in p for p in problems)


def test_duplicate_rule_ids_and_shadowed_rules() -> None:
    rules = """rules:
  - id: everything
    then: {queue: riyadh}
  - id: everything
    when: {channel: email}
    then: {queue: escalation}
"""
    text = MINIMAL.read_text().split("rules:")[0] + rules + "default: {queue: riyadh}\n"
    problems = problems_of(text)
    assert any("rules[1].id: duplicate rule id 'everything' (also rules[0])" in p for p in problems)
    ok = text.replace("  - id: everything\n    when", "  - id: later\n    when")
    loaded = parse_config(ok, Path("cfg.yaml"))
    assert len(loaded.warnings) == 1
    assert (
        "rules[1]: rule 'later' can never match: the catch-all rule 'everything'"
        in loaded.warnings[0]
    )


def test_calendar_inheritance_cycle() -> None:
    text = edit("calendars:\n", "calendars:\n  a: {inherits: b}\n  b: {inherits: a}\n")
    problems = problems_of(text)
    assert any("inheritance cycle" in p for p in problems)


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("first_response: 4h", "first_response: 4 hours"),
        ('slots: ["08:00-12:00", "13:00-16:00"]', 'slots: ["8am-noon"]'),
        ("timezone: Asia/Riyadh", "timezone: Mars/Olympus"),
    ],
)
def test_bad_values_are_named(snippet: str, message: str) -> None:
    problems = problems_of(edit(snippet, message))
    assert len(problems) == 1
    key = message.split(":")[0]
    assert f".{key}" in problems[0] or f"{key}[" in problems[0]


def test_durations() -> None:
    assert parse_duration("4h") == 4 * 3600
    assert parse_duration("30m") == 1800
    assert parse_duration("5d", business_day_seconds=7 * 3600) == 5 * 7 * 3600
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_condition_shorthands_and_actions() -> None:
    cond = Condition.model_validate({"keywords": ["a", "b"], "channel": "email", "regex": "x+"})
    assert cond.keywords is not None and cond.keywords.any == ["a", "b"]
    assert cond.channel == ["email"]
    assert cond.regex is not None and cond.regex.pattern == "x+"
    with pytest.raises(ValueError):
        Condition.model_validate({})
    with pytest.raises(ValueError):
        Action.model_validate({"notify": "agent", "tag": "x"})


def test_json_schema_names_the_sections() -> None:
    schema = QueueConfigFile.model_json_schema(by_alias=True)
    assert {"queues", "rules", "calendars", "sla_policies", "tests"} <= set(schema["properties"])
    text = json.dumps(schema)
    assert '"continue"' in text and '"not"' in text  # aliases, as written in YAML


def test_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml")
    assert "cannot read" in info.value.problems[0]


def test_config_env_var_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIDESK_CONFIG", str(MINIMAL))
    assert load_config().path == MINIMAL


def test_a_maintenance_interval_near_the_heartbeat_timeout_is_refused() -> None:
    """Workers heartbeat once per maintenance pass: at the timeout itself, live workers
    would look dead each cycle and have their batches taken."""
    text = "service:\n  broker_heartbeat_s: 5\n  broker_maintenance_s: 5\n" + MINIMAL.read_text()
    (problem,) = problems_of(text)
    assert problem.startswith("cfg.yaml:3: service.broker_maintenance_s: must be at most")
    (problem,) = problems_of("service:\n  broker_heartbeat_s: 3\n" + MINIMAL.read_text())
    assert "service.broker_maintenance_s: must be at most" in problem  # the default, 5
    fine = "service:\n  broker_heartbeat_s: 15\n  broker_maintenance_s: 5\n" + MINIMAL.read_text()
    assert parse_config(fine, Path("cfg.yaml")).data.service.broker_maintenance_s == 5
