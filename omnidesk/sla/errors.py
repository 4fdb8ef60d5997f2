"""The SLA package's errors, under the project's one root (`OmnideskError`)."""

from __future__ import annotations

from omnidesk.errors import OmnideskError


class SlaError(OmnideskError):
    """An SLA operation that names something the configuration does not have."""


class SlaConflict(OmnideskError):
    """A ticket's SLA state kept changing under us; the next sweep tries again."""
