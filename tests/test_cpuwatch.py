"""The CPU budget of a worker thread: CPU time past the budget raises in that thread, even
through the watched code's own `except Exception`; waiting costs nothing, and a block that
ended in time is never interrupted afterwards."""

from __future__ import annotations

import threading
import time

import pytest

from omnidesk.cpuwatch import CpuBudgetExceeded, cpu_budget

# Never under coverage's tracer (scripts/test --coverage runs it apart): the tracer takes the
# exception the watchdog sends into the watched thread (PyThreadState_SetAsyncExc), and the
# burning loop then never ends.
pytestmark = pytest.mark.no_cover


def burn(cpu_s: float) -> None:
    """Spend `cpu_s` seconds of this thread's CPU, swallowing every Exception on the way."""
    start = time.thread_time()
    while time.thread_time() - start < cpu_s:
        try:
            sum(range(1000))
        except Exception:  # what careless parsing code does
            continue


def test_cpu_past_the_budget_raises_in_the_thread_through_except_exception() -> None:
    outcome: list[str] = []

    def work() -> None:
        try:
            with cpu_budget(0.2):
                burn(5)
            outcome.append("finished")
        except CpuBudgetExceeded:
            outcome.append("stopped")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert outcome == ["stopped"]


def test_waiting_costs_no_budget_and_a_finished_block_is_left_alone() -> None:
    with cpu_budget(0.2):
        time.sleep(0.4)  # wall time, no CPU
        burn(0.05)
    burn(0.5)  # past the budget, but outside the block: nothing fires


def test_an_inner_budget_fires_inside_an_outer_one() -> None:
    with cpu_budget(10), pytest.raises(CpuBudgetExceeded), cpu_budget(0.1):
        burn(5)
