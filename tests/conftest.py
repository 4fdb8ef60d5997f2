"""Shared fixtures: the store kit (a runtime on the real Redis under a random prefix)."""

pytest_plugins = ["tests.storekit"]
