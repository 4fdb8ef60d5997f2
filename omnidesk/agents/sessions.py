"""Login sessions of the console (directory login): short-lived, revocable, CSRF-checked.

    P:auth:session:<sha256>  hash    agent, csrf, until (ms): the cookie's session; expires
                                     after `session_ttl_s` without a request, and is refused
                                     past `until` (`session_max_s` after login) whatever the use
    P:auth:sessions:<id>     set     the agent's session digests, so losing access ends them all
    P:auth:fail:<sha256>     string  login attempts of a name (its sha256) in the lockout window,
                                     cleared by a success

The cookie (`omnidesk_session`, the same one the token cookies of tokens.py use; a session
value starts ``ods_``) is random; Redis holds its sha256 only. It is HttpOnly, Secure and
SameSite=Strict, and every request but GET/HEAD/OPTIONS made with it must carry the
session's CSRF token in ``X-CSRF-Token`` (the page has it from the login's answer, never
from a cookie), compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import time

from omnidesk import viewers
from omnidesk.agents.roster import Forbidden
from omnidesk.agents.tokens import digest
from omnidesk.errors import AuthError
from omnidesk.ratelimit import count_in_window
from omnidesk.replies import text_fields, texts
from omnidesk.store import Store, guarded

SESSION_PREFIX = "ods_"
CSRF_HEADER = viewers.CSRF_HEADER  # named in the core: the dashboard reads it too
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Forbidden):
    """A state-changing request on a session cookie without the session's CSRF token."""


def is_session(cookie: str | None) -> bool:
    return bool(cookie) and str(cookie).startswith(SESSION_PREFIX)


def _ms() -> int:
    return int(time.time() * 1000)


class Sessions:
    def __init__(self, store: Store) -> None:
        self.store = store

    @guarded
    def create(self, agent_id: str, idle_s: int, max_s: int) -> tuple[str, str]:
        """A new session for the agent: (cookie value, CSRF token)."""
        cookie = SESSION_PREFIX + secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        h = digest(cookie)
        keys = self.store.keys
        pipe = self.store.r.pipeline(transaction=True)
        until = _ms() + max_s * 1000
        pipe.hset(keys.auth_session(h), mapping={"agent": agent_id, "csrf": csrf, "until": until})
        pipe.expire(keys.auth_session(h), min(idle_s, max_s))
        pipe.sadd(keys.auth_sessions(agent_id), h)
        pipe.expire(keys.auth_sessions(agent_id), max_s)
        pipe.execute()
        return cookie, csrf

    @guarded
    def lookup(self, cookie: str | None) -> tuple[str, str]:
        """(agent id, CSRF token) of a live session; AuthError otherwise."""
        if not is_session(cookie):
            raise AuthError("missing or invalid session cookie")
        key = self.store.keys.auth_session(digest(str(cookie)))
        fields = text_fields(self.store.r.hgetall(key))
        if not fields.get("agent"):
            raise AuthError("the session has ended: sign in again")
        if int(fields.get("until") or 0) <= _ms():
            self.store.r.delete(key)
            raise AuthError("the session has ended: sign in again")
        return fields["agent"], fields.get("csrf", "")

    @guarded
    def agent_for(self, cookie: str | None, method: str, csrf: str | None, idle_s: int) -> str:
        """The agent of a request made with the session cookie. A state-changing method
        needs the session's CSRF token (CsrfRefused, 403); each request renews the idle TTL."""
        agent_id, expected = self.lookup(cookie)
        if method.upper() not in SAFE_METHODS and not (
            csrf and expected and hmac.compare_digest(csrf.encode(), expected.encode())
        ):
            raise CsrfRefused("missing or wrong CSRF token (X-CSRF-Token)", "csrf_refused")
        self.store.r.expire(self.store.keys.auth_session(digest(str(cookie))), idle_s)
        return agent_id

    @guarded
    def drop(self, cookie: str | None) -> None:
        if is_session(cookie):
            h = digest(str(cookie))
            agent = self.store.r.hget(self.store.keys.auth_session(h), "agent")
            self.store.r.delete(self.store.keys.auth_session(h))
            if agent is not None:
                self.store.r.srem(self.store.keys.auth_sessions(str(agent)), h)

    @guarded
    def revoke(self, agent_id: str) -> int:
        """End every session of the agent; returns how many were live."""
        key = self.store.keys.auth_sessions(agent_id)
        hashes = texts(self.store.r.smembers(key))
        pipe = self.store.r.pipeline(transaction=True)
        for h in hashes:
            pipe.delete(self.store.keys.auth_session(h))
        pipe.delete(key)
        return sum(int(n) for n in pipe.execute()[: len(hashes)])

    # ---------------------------------------------------------------- lockout

    def _fail_key(self, name: str) -> str:
        return self.store.keys.auth_fail(digest(name.strip().lower()))

    @guarded
    def attempt(self, name: str, window_s: int) -> tuple[int, int]:
        """Count a login attempt of `name` before the directory is asked (so parallel guesses
        cannot slip past the limit): (attempts in the window, seconds until it ends). The
        window starts at the first; a success clears it, an unanswered one is `forgiven`."""
        return count_in_window(self.store.r, self._fail_key(name), window_s)

    @guarded
    def forgive(self, name: str) -> None:
        """Take back an attempt the directory never answered: not the person's failure."""
        self.store.r.decr(self._fail_key(name))

    @guarded
    def succeeded(self, name: str) -> None:
        self.store.r.delete(self._fail_key(name))
