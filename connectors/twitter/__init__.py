"""X (Twitter) connector: `normalize` turns an API v2 tweet or DM-event payload into Inbounds."""

from connectors.twitter.normalize import normalize

__all__ = ["normalize"]
