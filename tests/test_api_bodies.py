"""openapi.yaml and the request-body models of omnidesk.agents.bodies say the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from omnidesk.agents.bodies import REQUEST_BODIES, ReplyBody, TagsBody, TextBody, parse_body
from omnidesk.agents.desk import BadRequest

OPENAPI = Path(__file__).parent.parent / "omnidesk" / "agents" / "openapi.yaml"
# the public web form, status page and survey page check their own bodies
VALIDATED_ELSEWHERE = {"/v1/intake/web", "/v1/status", "/csat/{token}"}


def documented_bodies() -> dict[tuple[str, str], dict[str, Any]]:
    spec = YAML(typ="safe").load(OPENAPI.read_text("utf-8"))
    found = {}
    for path, item in spec["paths"].items():
        if path in VALIDATED_ELSEWHERE:
            continue
        for method, operation in item.items():
            if isinstance(operation, dict) and "requestBody" in operation:
                content = operation["requestBody"]["content"]["application/json"]
                found[(method, path)] = content["schema"]
    return found


def shape(schema: dict[str, Any]) -> dict[str, Any]:
    """Only what both sides state: the JSON type, and the items' type of an array."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    (one,) = options
    out = {"type": one["type"]}
    if "items" in one:
        out["items"] = shape(one["items"])
    return out


def test_every_documented_request_body_has_a_model():
    assert set(documented_bodies()) == set(REQUEST_BODIES)


@pytest.mark.parametrize("where", sorted(REQUEST_BODIES), ids="{0[0]} {0[1]}".format)
def test_documented_fields_required_and_types_match_the_model(where):
    documented = documented_bodies()[where]
    model = REQUEST_BODIES[where].model_json_schema()
    assert set(documented.get("properties", {})) == set(model["properties"])
    assert set(documented.get("required", [])) == set(model.get("required", []))
    for name, prop in model["properties"].items():
        assert shape(documented["properties"][name]) == shape(prop), name


@pytest.mark.parametrize(
    ("data", "model", "problem"),
    [
        ({}, TextBody, "text: required"),
        ({"text": None}, TextBody, "text: required"),
        ({"text": 5}, TextBody, "text: must be a str"),
        ({"add": "vip"}, TagsBody, "add: must be a list"),
        ({"add": ["vip", 5]}, TagsBody, "add[1]: must be a str"),
        ({"language": ["ar"]}, ReplyBody, "language: must be a str"),
    ],
)
def test_problems_name_the_field(data, model, problem):
    with pytest.raises(BadRequest) as info:
        parse_body(data, model)
    assert str(info.value) == problem


def test_unknown_keys_are_ignored_and_defaults_filled():
    assert parse_body({"add": ["vip"], "colour": "red"}, TagsBody) == TagsBody(add=["vip"])
