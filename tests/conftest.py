"""Shared fixtures: the store kit (a runtime on the real Redis under a random prefix) and
the test services; fixtures live in their own modules so branches merge cleanly."""

from tests.services import dovecot, redis_prefix, smtp_server  # noqa: F401

pytest_plugins = ["tests.storekit"]
