"""The connector catalog: every built-in kind has a class and a config model, and they agree."""

from __future__ import annotations

import typing

from connectors.catalog import BUILT_IN, ConnectorConfig, connector_class, kinds


def test_every_kind_has_its_model_in_the_union_and_its_class_uses_it() -> None:
    union, _ = typing.get_args(ConnectorConfig)
    models = {model.model_fields["kind"].default: model for model in typing.get_args(union)}
    assert set(models) == set(BUILT_IN)
    assert set(kinds()) >= BUILT_IN  # each is an installed entry point
    for kind, model in models.items():
        assert connector_class(kind).config_model is model
