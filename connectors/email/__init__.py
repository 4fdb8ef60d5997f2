"""The email channel: pure RFC 822 normalizer and subject ticket references."""

from connectors.email.normalize import EmailLimits, normalize
from connectors.email.threading import find_ticket_ref, format_ticket_ref

__all__ = ["EmailLimits", "find_ticket_ref", "format_ticket_ref", "normalize"]
