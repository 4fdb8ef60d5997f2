"""Per-agent bearer tokens, kept hashed: Redis holds sha256(token), never the token.

    P:auth:tokens          hash  sha256 hex -> agent id
    P:auth:agent:<id>      set   the agent's token hashes (so `revoke` removes them all)

A token is 32 random bytes (urlsafe base64) prefixed ``odt_``; a leak of Redis does not
give anyone a usable token, and a revoked one fails at once (no cache).
"""

from __future__ import annotations

import hashlib
import secrets

from omnidesk.errors import AuthError
from omnidesk.store import Store, guarded

PREFIX = "odt_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class Tokens:
    def __init__(self, store: Store) -> None:
        self.store = store

    @guarded
    def create(self, agent_id: str) -> str:
        """A new token for the agent (older ones stay valid until revoked); shown once."""
        token = PREFIX + secrets.token_urlsafe(32)
        h = digest(token)
        pipe = self.store.r.pipeline(transaction=True)
        pipe.hset(self.store.key("auth", "tokens"), h, agent_id)
        pipe.sadd(self.store.key("auth", "agent", agent_id), h)
        pipe.execute()
        self.store.add_event("token_created", actor="operator", agent=agent_id)
        return token

    @guarded
    def revoke(self, agent_id: str) -> int:
        """Revoke every token of the agent; returns how many there were."""
        key = self.store.key("auth", "agent", agent_id)
        hashes = list(self.store.r.smembers(key))
        pipe = self.store.r.pipeline(transaction=True)
        if hashes:
            pipe.hdel(self.store.key("auth", "tokens"), *hashes)
        pipe.delete(key)
        pipe.execute()
        self.store.add_event("token_revoked", actor="operator", agent=agent_id, count=len(hashes))
        return len(hashes)

    @guarded
    def agent_for(self, token: str | None) -> str:
        """The agent id a bearer token belongs to; AuthError when missing or unknown."""
        if not token:
            raise AuthError("missing bearer token")
        agent = self.store.r.hget(self.store.key("auth", "tokens"), digest(token))
        if agent is None:
            raise AuthError("invalid or revoked token")
        return str(agent)
