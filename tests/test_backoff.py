"""The one retry-delay formula: exponential, capped, jittered in the upper half."""

from __future__ import annotations

import random

import pytest

from omnidesk.backoff import Backoff, jittered_delay
from omnidesk.pipeline import backoff_ms


@pytest.mark.parametrize("attempt", range(12))
def test_delay_lies_in_the_upper_half_of_the_capped_exponential(attempt):
    ceiling = min(60.0, 0.5 * 2**attempt)
    delays = [jittered_delay(attempt, 0.5, 60.0) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jittered, not one fixed value


def test_backoff_counts_attempts_and_resets():
    random.seed(7)
    backoff = Backoff(base=1.0, cap=8.0)
    waits = [backoff.next() for _ in range(6)]
    for attempt, wait in enumerate(waits):
        ceiling = min(8.0, 2.0**attempt)
        assert ceiling / 2 <= wait <= ceiling
    backoff.reset()
    assert backoff.next() <= 1.0


def test_retry_after_wins_up_to_the_cap():
    backoff = Backoff(base=1.0, cap=30.0)
    assert backoff.next(retry_after=12.0) == 12.0
    assert backoff.next(retry_after=900.0) == 30.0


def test_delivery_delay_in_ms_and_retry_after_uncapped():
    assert 500 <= backoff_ms(0) <= 1_000
    assert 450_000 <= backoff_ms(30) <= 900_000
    assert backoff_ms(0, retry_after=1_200.0) == 1_200_000
