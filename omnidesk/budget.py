"""Normalizing under a size, CPU and memory budget (`service.parse` in the config).

A payload over `max_bytes` is refused unread. One over `inline_bytes` is parsed in a child
process with RLIMIT_CPU set to `cpu_s` and RLIMIT_AS to its size plus `max_memory_mb`:
parsers spend their time in C (Lexbor, the regex engine, the email package's C helpers),
where no Python signal or dramatiq time limit can stop them, but the kernel stops a process
at its CPU limit, and a parse that grows past its memory fails in the child instead of
waking the OOM killer, which might pick Redis or the worker. Smaller payloads are parsed
inline, which spares them the ~5 ms a child costs, under omnidesk.cpuwatch: a watchdog
stops Python code past `cpu_s`; the C parsers are linear in their input in time and memory
(HTML nesting is capped and formatting tags are left out, see connectors.email.htmltext),
so `inline_bytes` bounds each C call. Any refusal is a PayloadError (`too_large`,
`parse_budget`): the payload goes to the quarantine and the rest of its batch goes on.

The child is a fork of the worker: it starts in a few milliseconds with everything imported
(a forkserver child took 100 ms, a fresh interpreter more). The worker runs threads, and a
fork copies only the calling one; CPython re-creates the GIL, the global import lock and
logging's locks in the child, but not the per-module import locks: a module another thread
was importing at the fork stays locked in the child forever. So before the first fork,
everything the normalizers import lazily (their modules, every codec, the email package,
phone metadata) is imported. Forks are serialized, so that no child inherits the write end
of another parse's pipe, which would hide that parse's child dying at its CPU limit. A
child stuck on something else anyway is killed at the wall-clock limit, and its payload is
quarantined, not lost.
"""

from __future__ import annotations

import importlib
import multiprocessing
import pkgutil
import resource
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from omnidesk.config import ParseBudget
from omnidesk.cpuwatch import CpuBudgetExceeded, cpu_budget
from omnidesk.errors import PayloadError, PermanentError, TransientError
from omnidesk.model import Channel, Inbound, Skipped

_MB = 1024 * 1024

NormalizeFn = Callable[..., Sequence[Inbound | Skipped]]  # (channel, payload, *, account)

_context = multiprocessing.get_context("fork")
_fork_lock = threading.Lock()  # held from a parse's pipe to its child's start
_preloaded = False
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
    return _in_child(normalize, channel, payload, account, budget)


def import_lazy_modules() -> None:
    """Import what the normalizers would import on first use, so that no fork happens while
    another thread holds one of those modules' import locks (see the module docstring)."""
    import email
    import encodings

    from phonenumbers.phonemetadata import PhoneMetadata

    from connectors.registry import normalizer

    for package in (encodings, email):
        for module in pkgutil.iter_modules(package.__path__):
            try:
                importlib.import_module(f"{package.__name__}.{module.name}")
            except ImportError:  # encodings.mbcs and .oem exist on Windows only
                continue
    PhoneMetadata.load_all()
    for channel in Channel:
        try:
            normalizer(channel)
        except PermanentError:  # not registered: never parsed, in a child or not
            continue


def _start_child(
    normalize: NormalizeFn,
    channel: Channel | str,
    payload: bytes,
    account: str,
    budget: ParseBudget,
) -> tuple[Connection, multiprocessing.process.BaseProcess]:
    """Fork the parse child; the receiving end of its pipe and the child. Under `_fork_lock`:
    a child forked by another thread meanwhile would hold this pipe's sending end."""
    global _preloaded
    with _fork_lock:
        if not _preloaded:
            import_lazy_modules()
            _preloaded = True
        receiver, sender = _context.Pipe(duplex=False)
        child = _context.Process(
            target=_child_main,
            args=(sender, normalize, channel, payload, account, budget),
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
    return receiver, child


def _in_child(
    normalize: NormalizeFn,
    channel: Channel | str,
    payload: bytes,
    account: str,
    budget: ParseBudget,
) -> Sequence[Inbound | Skipped]:
    receiver, child = _start_child(normalize, channel, payload, account, budget)
    try:
        # the wall-clock wait only guards a child that hangs without spending CPU
        outcome = receiver.recv() if receiver.poll(budget.cpu_s * 3 + 5) else None
    except EOFError:  # killed at its CPU limit (or by its memory limit) before it answered
        outcome = None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
        with _fork_lock:  # start() reaps finished children: not while this one is read
            exitcode = child.exitcode
            child.close()  # its sentinel pipe, which later children would inherit
    if outcome is None:
        message = (
            f"parsing took over {budget.cpu_s} s of CPU or {budget.max_memory_mb} MB of memory"
            f" (child exit code {exitcode})"
        )
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
    budget: ParseBudget,
) -> None:
    """In the child: limit CPU and memory, normalize, send back ("ok", results) or
    ("error", ...)."""
    cpu_s = budget.cpu_s
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would dump the payload to disk
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))  # SIGXCPU, then SIGKILL
    forked = _address_space()
    memory = forked + budget.max_memory_mb * _MB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    outcome: tuple[str, Any]
    try:
        outcome = ("ok", list(normalize(channel, payload, account=account)))
    except Exception as exc:
        outcome = _child_error(exc, _peak_address_space() - forked, budget.max_memory_mb)
    sender.send(outcome)
    sender.close()


def _child_error(exc: Exception, grown: int, max_memory_mb: int) -> tuple[str, Any]:
    """("error", (kind, reason, message)) for the parent. A C parser out of memory says so
    vaguely (Lexbor: "Can't parse HTML"), so any error after the child's address space grew
    past half its budget counts as a memory overrun: a parse_budget refusal."""
    if isinstance(exc, MemoryError) or grown > max_memory_mb * _MB // 2:
        message = f"parsing needed over {max_memory_mb} MB of memory ({type(exc).__name__})"
        return ("error", ("PayloadError", "parse_budget", message))
    kind = next((n for n, cls in _ERRORS.items() if isinstance(exc, cls)), type(exc).__name__)
    return ("error", (kind, getattr(exc, "reason", ""), str(exc)))


def _address_space() -> int:
    """This process's virtual size in bytes: what the fork inherited, counted by RLIMIT_AS."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _peak_address_space() -> int:
    """The most virtual memory this process has held, in bytes (VmPeak)."""
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(line for line in status if line.startswith("VmPeak:"))
    return int(peak.split()[1]) * 1024
