"""The connector catalog: every kind has a class and a config model, and they agree."""

from __future__ import annotations

import typing

from connectors.catalog import KINDS, ConnectorConfig, connector_class


def test_every_kind_has_its_model_in_the_union_and_its_class_uses_it():
    union, _ = typing.get_args(ConnectorConfig)
    models = {model.model_fields["kind"].default: model for model in typing.get_args(union)}
    assert set(models) == set(KINDS)
    for kind, model in models.items():
        assert connector_class(kind).config_model is model  # type: ignore[attr-defined]
