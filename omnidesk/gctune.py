"""Python's cyclic garbage collector, set for a long-running service process (`omnidesk run`,
`omnidesk worker`). Measured in one process taking the e2e benchmark's mix in, collections
were a fifth of its CPU per ticket, for two reasons this module takes away:

- What start-up made (modules, the config, compiled rules, locale data) lives as long as the
  process, yet every full collection walked all of it: `gc.freeze()` sets it aside.
- An ingest batch holds thousands of containers at once, and a young collection ran every
  700 net new ones: the threshold goes to 10,000. Reference counting still frees nearly
  everything at once; only reference cycles wait for a collection.

A config reload (SIGHUP) makes a new config and drops the old one, which was frozen: the
daemon calls `refreeze` after it (one full collection on the event loop, once per reload),
so the old config is collected once nothing holds it any more (the guide libraries' cache
keeps the last few), instead of staying frozen for the life of the process.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # net new containers between young collections (Python: 700)

_settled = False


def settle() -> None:
    """Once start-up is done: collect what it left, freeze the rest, raise the threshold."""
    global _settled
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
    _settled = True


def refreeze() -> None:
    """After a reload, in a process that settled: what the old config held becomes
    collectable again (one full collection), and what lives on is frozen anew."""
    if not _settled:
        return
    gc.unfreeze()
    gc.collect()
    gc.freeze()
