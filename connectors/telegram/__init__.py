"""Telegram connector: `normalize` turns a Bot API Update into an Inbound."""

from connectors.telegram.normalize import normalize

__all__ = ["normalize"]
