"""The `integration` marker that splits CI's unit and integration stages (tests/stages.py):
set from the fixtures a test reaches, however indirectly, and not from the autouse run
database every test has."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def on_a_service(prefix: str) -> str:
    """A test's own fixture that stands on a service fixture (Redis's key prefix)."""
    return prefix


def integration(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("integration") is not None


def test_a_test_on_a_service_fixture_is_integration(request, redis_prefix) -> None:
    assert integration(request)


def test_a_fixture_standing_on_a_service_makes_the_test_integration(request, on_a_service):
    assert integration(request)


def test_a_test_on_no_service_is_unit_despite_the_autouse_run_database(
    request, tmp_path: Path
) -> None:
    assert "run_database" in request.fixturenames
    assert not integration(request)
