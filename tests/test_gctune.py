"""The collector setting of the service processes (omnidesk/gctune.py): start-up's objects
frozen out of collections, young collections a fourteenth as often, and a reload's old
config given back to the collector. The test puts this process's collector back after."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from omnidesk import gctune


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        gctune._settled = False


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.mark.usefixtures("collector")
def test_settle_freezes_start_up_and_collects_the_young_less_often() -> None:
    gctune.refreeze()  # not settled: a process that never settled is left alone
    assert gc.get_freeze_count() == 0
    gctune.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == gctune.YOUNG_THRESHOLD


@pytest.mark.usefixtures("collector")
def test_a_reload_gives_the_old_configs_cycles_back_to_the_collector() -> None:
    old_config = Node()
    dropped = weakref.ref(old_config)
    gctune.settle()  # frozen with the rest of start-up
    del old_config  # the reload drops it; its cycle keeps it alive
    gc.collect()
    assert dropped() is not None  # frozen: no collection looks at it
    gctune.refreeze()
    assert dropped() is None  # given back to the collector, and collected
