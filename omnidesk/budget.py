"""Normalizing under a size and CPU budget (`service.parse` in the config).

A payload over `max_bytes` is refused unread. One over `inline_bytes` is parsed in a child
process with RLIMIT_CPU set to `cpu_s`: parsers spend their time in C (Lexbor, the regex
engine, the email package's C helpers), where no Python signal or dramatiq time limit can
stop them, but the kernel stops a process at its CPU limit. Smaller payloads are parsed
inline, which spares them the ~5 ms a child costs, under omnidesk.cpuwatch: a watchdog
stops Python code past `cpu_s`; the C parsers are linear in their input (HTML nesting is
capped, see connectors.email.htmltext), so `inline_bytes` bounds each C call. Any refusal
is a PayloadError (`too_large`, `parse_budget`): the payload goes to the quarantine and the
rest of its batch goes on.

The child is a fork of the worker: it starts in a few milliseconds with everything imported
(a forkserver child took 100 ms, a fresh interpreter more). The worker runs threads, and a
fork copies only the calling one; CPython re-creates the GIL, the import lock and logging's
locks in the child, and the child touches no socket. A child stuck on something else anyway
is killed at the wall-clock limit, and its payload is quarantined, not lost.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from omnidesk.config import ParseBudget
from omnidesk.cpuwatch import CpuBudgetExceeded, cpu_budget
from omnidesk.errors import PayloadError, PermanentError, TransientError
from omnidesk.model import Channel, Inbound, Skipped

NormalizeFn = Callable[..., Sequence[Inbound | Skipped]]  # (channel, payload, *, account)

_context = multiprocessing.get_context("fork")
_ERRORS: dict[str, type[Exception]] = {
    "PayloadError": PayloadError,
    "PermanentError": PermanentError,
    "TransientError": TransientError,
}


class ParseCrashed(Exception):
    """The normalizer raised something unexpected in the child; its type and message."""


def normalize_within(
    normalize: NormalizeFn,
    channel: Channel | str,
    payload: bytes,
    *,
    account: str,
    budget: ParseBudget,
) -> Sequence[Inbound | Skipped]:
    """`normalize(channel, payload, account=...)` within `budget`; PayloadError when over."""
    size = len(payload)
    if size > budget.max_bytes:
        message = f"{size} bytes is over the {budget.max_bytes}-byte parse budget"
        raise PayloadError(message, reason="too_large")
    if size <= budget.inline_bytes:
        try:
            with cpu_budget(budget.cpu_s):
                return normalize(channel, payload, account=account)
        except CpuBudgetExceeded:
            message = f"parsing took over {budget.cpu_s} s of CPU (stopped in the worker)"
            raise PayloadError(message, reason="parse_budget") from None
    return _in_child(normalize, channel, payload, account, budget.cpu_s)


def _in_child(
    normalize: NormalizeFn, channel: Channel | str, payload: bytes, account: str, cpu_s: int
) -> Sequence[Inbound | Skipped]:
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(
        target=_child_main,
        args=(sender, normalize, channel, payload, account, cpu_s),
        name="omnidesk-parse",
        daemon=True,
    )
    try:
        child.start()
    except OSError as exc:  # out of processes or memory: try again later
        receiver.close()
        raise TransientError(f"cannot start a parse process: {exc}") from None
    finally:
        sender.close()
    try:
        # the wall-clock wait only guards a child that hangs without spending CPU
        outcome = receiver.recv() if receiver.poll(cpu_s * 3 + 5) else None
    except EOFError:  # killed at its CPU limit before it answered
        outcome = None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
    if outcome is None:
        message = f"parsing took over {cpu_s} s of CPU (child exit code {child.exitcode})"
        raise PayloadError(message, reason="parse_budget")
    kind, value = outcome
    if kind == "ok":
        return value
    name, reason, message = value
    if name == "PayloadError":
        raise PayloadError(message, reason=reason)
    if name in _ERRORS:
        raise _ERRORS[name](message)
    raise ParseCrashed(f"{name}: {message}")


def _child_main(
    sender: Connection,
    normalize: NormalizeFn,
    channel: Channel | str,
    payload: bytes,
    account: str,
    cpu_s: int,
) -> None:
    """In the child: limit the CPU, normalize, send back ("ok", results) or ("error", ...)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would dump the payload to disk
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))  # SIGXCPU, then SIGKILL
    outcome: tuple[str, Any]
    try:
        outcome = ("ok", list(normalize(channel, payload, account=account)))
    except Exception as exc:
        kind = next((n for n, cls in _ERRORS.items() if isinstance(exc, cls)), type(exc).__name__)
        outcome = ("error", (kind, getattr(exc, "reason", ""), str(exc)))
    sender.send(outcome)
    sender.close()
