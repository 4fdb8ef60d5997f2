"""The desk's refusals, apart from the desk so the attachments (which the desk uses) can raise
them too without importing it back."""

from __future__ import annotations

from omnidesk.errors import CodedError


class NotFound(CodedError):
    """No such ticket (or template)."""


class BadRequest(CodedError):
    """The action cannot be done as asked: the message says why."""
