"""Web-form connector: `normalize` validates a submission and turns it into an Inbound."""

from connectors.web.normalize import normalize

__all__ = ["normalize"]
