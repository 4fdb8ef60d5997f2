"""The connector catalog: every built-in kind has a class and a config model, and they agree."""

from __future__ import annotations

import typing
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from connectors import catalog
from connectors.catalog import BUILT_IN, ConnectorConfig, connector_class, kinds, validate_entry
from omnidesk.configload import load_config
from omnidesk.errors import ConfigError


def test_every_kind_has_its_model_in_the_union_and_its_class_uses_it() -> None:
    union, _ = typing.get_args(ConnectorConfig)
    models = {model.model_fields["kind"].default: model for model in typing.get_args(union)}
    assert set(models) == set(BUILT_IN)
    assert set(kinds()) >= BUILT_IN  # each is an installed entry point
    for kind, model in models.items():
        assert connector_class(kind).config_model is model


class PagerConfig(BaseModel):
    """Another package's connector config: not a member of our union."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["pager"]
    name: str
    number: str


class PagerConnector:
    config_model = PagerConfig
    uses_lease = False


def test_another_packages_kind_is_checked_with_its_own_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kind another installed package adds (an `omnidesk.connectors` entry point) is
    validated with its class's config_model, its problems on their own keys; one whose
    class cannot be loaded is a problem on `kind`, not a traceback."""
    from tests.test_connectors_cli import write_config

    installed = catalog.kinds()
    pager = EntryPoint("pager", f"{__name__}:PagerConnector", catalog.GROUP)
    broken = EntryPoint("broken", "tests.no_such_module:Nothing", catalog.GROUP)
    monkeypatch.setattr(catalog, "kinds", lambda: {**installed, "pager": pager, "broken": broken})
    assert isinstance(validate_entry({"kind": "pager", "name": "p", "number": "1"}), PagerConfig)
    config = write_config(
        tmp_path,
        "  - {name: p1, kind: pager}\n  - {name: b1, kind: broken}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(config)
    problems = "\n".join(info.value.problems)
    assert "connectors[0].number: required" in problems
    assert "connectors[1].kind: connector kind 'broken' is not available" in problems
