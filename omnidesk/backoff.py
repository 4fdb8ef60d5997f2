"""How long to wait before trying again: one formula for every retry in Omnidesk.

Connector reconnects, reply deliveries and ingest waits all back off the same way:
exponentially up to a cap, with jitter so that many clients that failed together do
not retry together (the shape of dramatiq's `compute_backoff`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def jittered_delay(attempt: int, base: float, cap: float) -> float:
    """The wait before retry `attempt` (0 for the first): `base` doubled per attempt up to
    `cap`, then a random point in the upper half of that ("equal jitter"), so a retry is
    never much sooner than the exponential schedule but retries still spread out."""
    ceiling = min(cap, base * 2.0 ** min(attempt, 64))
    return random.uniform(ceiling / 2, ceiling)


@dataclass
class Backoff:
    """Attempts in a row and the wait before the next one, for a loop that retries itself
    (a connector's reconnect loop, the daemon waiting for Redis); `reset` on success."""

    base: float = 1.0
    cap: float = 300.0
    attempts: int = 0

    def next(self, retry_after: float | None = None) -> float:
        """The next wait in seconds; the server's Retry-After wins, up to the cap."""
        self.attempts += 1
        if retry_after is not None:
            return min(self.cap, retry_after)
        return jittered_delay(self.attempts - 1, self.base, self.cap)

    def reset(self) -> None:
        self.attempts = 0
