"""Which running connector sends the replies of which (channel, account): the `deliver`
actor's senders, registered when the daemon starts its connectors (apart from service.py,
which only calls it)."""

from __future__ import annotations

import asyncio

from connectors.base import Connector
from omnidesk.model import Channel
from omnidesk.pipeline import register_sender


def register_connector_sender(
    connector: Connector, loop: asyncio.AbstractEventLoop | None = None
) -> bool:
    """Make `connector.send` (and its `send_many`, if it has one) the `deliver` actor's
    sender for its (channel, account), run on `loop` (the daemon's, where the connector
    lives). False when it cannot reply."""
    channels = reply_channels(connector)
    send_many = getattr(connector, "send_many", None)  # a connector that writes a batch at once
    for channel in channels:
        register_sender(channel, connector.name, connector.send, loop=loop, send_many=send_many)
    return bool(channels)


def reply_channels(connector: Connector) -> tuple[Channel, ...]:
    """The channels a connector replies on: its own (IMAP accounts reply by email), or what
    it declares (a drop folder with an outbox: every channel its files come in on); none
    when it cannot send."""
    declared: tuple[Channel, ...] | None = getattr(connector, "reply_channels", None)
    if declared is not None:
        return declared
    if type(connector).send is Connector.send:
        return ()
    return (Channel({"imap": "email"}.get(connector.kind, connector.kind)),)
