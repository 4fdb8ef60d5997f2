"""A second daemon for the lease test: one ImapConnector in a process of its own, holding
the account's lease and printing each hand-over, until it is killed.

Run as `python -m tests.lease_holder '<json spec>'` from the repository root.
"""

from __future__ import annotations

import asyncio
import json
import sys

import redis.asyncio as aioredis

from connectors.email.config import EmailAccount
from connectors.email.imap import ImapConnector
from connectors.state import CursorStore, Lease
from omnidesk.model import RawPayload


async def main(spec: dict) -> None:
    client = aioredis.Redis.from_url(spec["redis"])
    account = EmailAccount.model_validate(spec["account"])
    lease = Lease(client, spec["prefix"], account.name, ttl=spec["ttl"], token=spec["token"])
    connector = ImapConnector(account, CursorStore(client, spec["prefix"]), lease=lease)

    async def sink(batch: list[RawPayload]) -> None:
        for payload in batch:
            print("HANDED", payload.source, flush=True)

    await connector.initialize()
    await connector.start(sink)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
