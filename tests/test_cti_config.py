"""The `cti` section and agents' extensions as `omnidesk check` reads them: a callback queue
or policy that does not exist and an extension held twice are named with their line; the
PBX's secret comes from its variable and is masked in logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from omnidesk.configload import load_config
from omnidesk.errors import ConfigError

CONFIG = """\
version: 1
sla_policies:
  standard: {first_response: 4h}
queues:
  general: {kind: contact_centre, sla_policy: standard}
default: {queue: general}
agents:
  - {id: amal, queues: [general], extension: "2001"}
  - {id: omar, queues: [general], extension: "2001"}
cti:
  pbx:
    riyadh-pbx: {secret_env: OD_TEST_CTI_SECRET, branch: riyadh}
  callback_queue: callbacks
  callback_sla_policy: nightly
"""


def test_bad_references_and_a_shared_extension_are_named(tmp_path: Path) -> None:
    path = tmp_path / "queue_config.yaml"
    path.write_text(CONFIG)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = "\n".join(info.value.problems)
    assert f"{path}:13: cti.callback_queue: queue 'callbacks' does not exist" in problems
    assert f"{path}:14: cti.callback_sla_policy: SLA policy 'nightly' does not exist" in problems
    assert (
        f"{path}:9: agents[1].extension: extension '2001' is also held by agent 'amal'" in problems
    )


def test_a_good_section_loads_and_its_secret_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OD_TEST_CTI_SECRET", "very-secret-pbx-key")
    path = tmp_path / "queue_config.yaml"
    fixed = CONFIG.replace('extension: "2001"}\ncti', 'extension: "2002"}\ncti')
    path.write_text(fixed.replace("callbacks", "general").replace("nightly", "standard"))
    loaded = load_config(path)
    assert loaded.data.cti is not None and loaded.data.cti.pbx["riyadh-pbx"].branch == "riyadh"
    assert [a.extension for a in loaded.data.agents] == ["2001", "2002"]
    with caplog.at_level(logging.INFO):
        logging.getLogger("omnidesk.test").warning("key very-secret-pbx-key")
    assert "very-secret-pbx-key" not in caplog.text
