"""Per-agent bearer tokens, kept hashed: Redis holds sha256(token), never the token.

    P:auth:tokens          hash  sha256 hex -> agent id
    P:auth:agent:<id>      set   the agent's token hashes (so `revoke` removes them all)

    P:auth:cookie:<sha256> string  the sha256 of the token a browser cookie stands for (a TTL)

A token is 32 random bytes (urlsafe base64) prefixed ``odt_``; a leak of Redis does not
give anyone a usable token, and a revoked one fails at once (no cache).
"""

from __future__ import annotations

import hashlib
import secrets

from omnidesk.errors import AuthError
from omnidesk.events import EventType
from omnidesk.store import Store, guarded

PREFIX = "odt_"
COOKIE_PREFIX = "odc_"


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
        pipe.hset(self.store.keys.auth_tokens(), h, agent_id)
        pipe.sadd(self.store.keys.auth_agent(agent_id), h)
        pipe.execute()
        self.store.add_event(EventType.TOKEN_CREATED, actor="operator", agent=agent_id)
        return token

    @guarded
    def revoke(self, agent_id: str, actor: str = "operator") -> int:
        """Revoke every token of the agent; returns how many there were."""
        key = self.store.keys.auth_agent(agent_id)
        hashes = list(self.store.r.smembers(key))
        pipe = self.store.r.pipeline(transaction=True)
        if hashes:
            pipe.hdel(self.store.keys.auth_tokens(), *hashes)
        pipe.delete(key)
        pipe.execute()
        self.store.add_event(
            EventType.TOKEN_REVOKED, actor=actor, agent=agent_id, count=len(hashes)
        )
        return len(hashes)

    @guarded
    def agent_for(self, token: str | None) -> str:
        """The agent id a bearer token belongs to; AuthError when missing or unknown."""
        if not token:
            raise AuthError("missing bearer token")
        agent = self.store.r.hget(self.store.keys.auth_tokens(), digest(token))
        if agent is None:
            raise AuthError("invalid or revoked token")
        return str(agent)

    @guarded
    def create_cookie(self, token: str | None, ttl_s: int) -> str:
        """A random cookie value standing for a valid `token` for `ttl_s`: what EventSource
        and <img> send, since they cannot send an Authorization header. The token itself
        never goes into a cookie, and revoking it ends its cookies at once."""
        self.agent_for(token)
        value = COOKIE_PREFIX + secrets.token_urlsafe(32)
        key = self.store.keys.auth_cookie(digest(value))
        self.store.r.set(key, digest(token or ""), ex=max(1, ttl_s))
        return value

    @guarded
    def drop_cookie(self, value: str | None) -> None:
        if value:
            self.store.r.delete(self.store.keys.auth_cookie(digest(value)))

    @guarded
    def agent_for_cookie(self, value: str | None) -> str:
        """The agent a cookie from `create_cookie` stands for; AuthError when missing, expired,
        or its token was revoked."""
        if not value:
            raise AuthError("missing bearer token or session cookie")
        token_hash = self.store.r.get(self.store.keys.auth_cookie(digest(value)))
        if token_hash is None:
            raise AuthError("invalid or expired session cookie")
        agent = self.store.r.hget(self.store.keys.auth_tokens(), token_hash)
        if agent is None:
            raise AuthError("the session cookie's token was revoked")
        return str(agent)
