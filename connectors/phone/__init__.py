"""Phone channel: `normalize` turns a call the CTI endpoint hands over into an Inbound."""

from connectors.phone.normalize import normalize

__all__ = ["normalize"]
