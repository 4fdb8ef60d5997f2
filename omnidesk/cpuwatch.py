"""A CPU budget for code running in a worker thread: `with cpu_budget(seconds): ...`.

Signals reach only the main thread, and the worker parses in its own threads, so one daemon
watchdog thread reads the CPU clock of every thread inside a budget
(`time.pthread_getcpuclockid`) and raises `CpuBudgetExceeded` in a thread past its budget
(`PyThreadState_SetAsyncExc`, what dramatiq's time limit does). The exception arrives at the
next Python instruction, so it stops Python loops; a C call runs to its end first, which is
why only payloads small enough for the linear C parsers are watched this way
(omnidesk.budget sends bigger ones to a child process with RLIMIT_CPU).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

_POLL_S = 0.05


class CpuBudgetExceeded(BaseException):
    """A thread used more CPU than its budget. A BaseException, so that the `except Exception`
    of the code being watched cannot swallow it."""


@dataclass(eq=False)
class _Watched:
    ident: int
    clock: int
    deadline: float
    fired: bool = field(default=False)


class _Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: set[_Watched] = set()
        self._thread: threading.Thread | None = None

    def add(self, cpu_s: float) -> _Watched:
        ident = threading.get_ident()
        clock = time.pthread_getcpuclockid(ident)
        entry = _Watched(ident, clock, time.clock_gettime(clock) + cpu_s)
        with self._lock:
            self._watched.add(entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cpu-budget", daemon=True)
                self._thread.start()
        return entry

    def discard(self, entry: _Watched) -> None:
        """Stop watching; a budget exception fired but not yet raised is cancelled."""
        with self._lock:
            self._watched.discard(entry)
            if entry.fired:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(entry.ident), None)

    def _run(self) -> None:
        while True:
            time.sleep(_POLL_S)
            with self._lock:
                for entry in self._watched:
                    if not entry.fired and time.clock_gettime(entry.clock) > entry.deadline:
                        entry.fired = True
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(entry.ident), ctypes.py_object(CpuBudgetExceeded)
                        )


_watchdog = _Watchdog()


@contextlib.contextmanager
def cpu_budget(cpu_s: float) -> Iterator[None]:
    """Raise CpuBudgetExceeded in this thread once the block has used `cpu_s` CPU seconds."""
    entry = _watchdog.add(cpu_s)
    try:
        yield
    finally:
        while True:  # the budget may fire while we leave: leave again, it fires only once
            try:
                _watchdog.discard(entry)
                break
            except CpuBudgetExceeded:
                continue
