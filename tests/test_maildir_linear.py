"""Issue 16: the drop folder takes a large backlog in linear time. Real files in tmp_path
and the real connector; the only stand-ins are counting wrappers around the OS calls
(`os.scandir`, `os.stat`, `os.fstat`, `os.replace`), which still do the real work. A
backlog of n files must cost a constant number of directory listings per pass (not one
per batch) and a constant number of entries, stats, reads and moves per file, at 20,000
files as at 40,000.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors.maildir import MaildirConfig, MaildirConnector
from omnidesk.model import RawPayload

BATCH = 100  # the connector's default batch_size: n/100 hand-overs per backlog
SIZES = (20_000, 40_000)
ROOT_ENTRIES = 3  # new/, cur/ and tmp/ in the folder itself, listed at every scan
PASSES_LIMIT = 1_000  # bound on the passes a drain may take: a file never taken fails


@dataclass
class OsCalls:
    """What the connector asked of the file system, counted."""

    listings: list[str] = field(default_factory=list)  # the folder of each os.scandir
    entries: int = 0  # directory entries yielded by all the listings
    entry_stats: int = 0  # DirEntry.stat() calls
    stats: int = 0  # os.stat (Path.stat, exists, is_dir...)
    fstats: int = 0
    replaces: int = 0


class CountedEntry:
    """A real os.DirEntry whose stat() is counted (DirEntry itself cannot be patched)."""

    def __init__(self, entry: os.DirEntry[str], calls: OsCalls) -> None:
        self._entry, self._calls = entry, calls

    def stat(self, *args: Any, **kwargs: Any) -> os.stat_result:
        self._calls.entry_stats += 1
        return self._entry.stat(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._entry, name)


class CountedListing:
    """os.scandir's iterator and context manager, counting the entries it yields."""

    def __init__(self, listing: Any, calls: OsCalls) -> None:
        self._listing, self._calls = listing, calls

    def __enter__(self) -> CountedListing:
        self._listing.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listing.__exit__(*exc)

    def __iter__(self) -> Iterator[CountedEntry]:
        for entry in self._listing:
            self._calls.entries += 1
            yield CountedEntry(entry, self._calls)


@pytest.fixture
def os_calls(monkeypatch: pytest.MonkeyPatch) -> OsCalls:
    """Counting wrappers around the real calls, in place for the whole process (the
    connector's scans and reads run in threads)."""
    calls = OsCalls()
    scandir, stat, fstat, replace = os.scandir, os.stat, os.fstat, os.replace

    def counted_scandir(path: Any = ".") -> CountedListing:
        calls.listings.append(str(path))
        return CountedListing(scandir(path), calls)

    def counted_stat(*args: Any, **kwargs: Any) -> os.stat_result:
        calls.stats += 1
        return stat(*args, **kwargs)

    def counted_fstat(fd: int) -> os.stat_result:
        calls.fstats += 1
        return fstat(fd)

    def counted_replace(*args: Any, **kwargs: Any) -> None:
        calls.replaces += 1
        replace(*args, **kwargs)

    monkeypatch.setattr(os, "scandir", counted_scandir)
    monkeypatch.setattr(os, "stat", counted_stat)
    monkeypatch.setattr(os, "fstat", counted_fstat)
    monkeypatch.setattr(os, "replace", counted_replace)
    return calls


def fill(new: Path, count: int) -> None:
    """`count` small web-form files, written straight into new/ (settle_seconds is 0)."""
    for n in range(count):
        body = {"message": f"backlog {n}", "email": f"b{n}@example.sa"}
        (new / f"b{n:06d}.web.json").write_text(json.dumps(body), "utf-8")


@dataclass
class Taken:
    """A sink that accepts everything, noting how many files each hand-over carried."""

    batches: list[int] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)

    async def __call__(self, items: list[RawPayload]) -> None:
        self.batches.append(len(items))
        self.sources.update(item.source for item in items)


async def drain_backlog(root: Path, count: int, calls: OsCalls) -> tuple[OsCalls, Taken]:
    """Fill a fresh drop folder with `count` files and run the connector's passes until
    every file was handed over and the connector asks to wait; what that cost."""
    (root / "new").mkdir(parents=True)
    fill(root / "new", count)
    config = MaildirConfig(name="drop", path=str(root), settle_seconds=0, batch_size=BATCH)
    taken = Taken()
    start = OsCalls(**{**calls.__dict__, "listings": list(calls.listings)})
    async with MaildirConnector(config) as connector:
        for _ in range(PASSES_LIMIT):
            wait = await connector.run_once(taken)
            if wait is not None and len(taken.sources) == count:
                break  # the backlog is drained: the connector would sleep now
        else:
            raise AssertionError(f"{len(taken.sources)} of {count} files taken")
    cost = OsCalls(
        listings=calls.listings[len(start.listings) :],
        entries=calls.entries - start.entries,
        entry_stats=calls.entry_stats - start.entry_stats,
        stats=calls.stats - start.stats,
        fstats=calls.fstats - start.fstats,
        replaces=calls.replaces - start.replaces,
    )
    return cost, taken


@pytest.mark.slow
async def test_a_backlog_costs_one_listing_per_pass_and_a_constant_per_file(
    tmp_path: Path, os_calls: OsCalls
) -> None:
    costs: dict[int, OsCalls] = {}
    for count in SIZES:
        root = tmp_path / f"drop{count}"
        cost, taken = await drain_backlog(root, count, os_calls)
        costs[count] = cost
        assert len(taken.sources) == count and sum(taken.batches) == count  # each file once
        assert len(taken.batches) == count // BATCH  # many batches...
        # ...and two scans in all: the first look, and the second (files unchanged: the
        # whole backlog, drained batch by batch); each lists new/ and the folder itself
        assert len(cost.listings) == 4, f"{len(cost.listings)} listings for {count} files"
        assert sorted(set(cost.listings)) == sorted({str(root), str(root / "new")})
        # per file: seen by two scans (two looks), statted once by each, opened and
        # fstatted once, moved to cur/ once; nothing else stats a file by its path
        assert cost.entries == 2 * count + 2 * ROOT_ENTRIES
        assert cost.entry_stats == 2 * count
        assert cost.fstats == count and cost.replaces == count
        assert cost.stats <= 10  # the folder checks at start-up, never per file or batch
        assert len(list((root / "cur").iterdir())) == count
    small, large = (costs[count] for count in SIZES)
    assert len(large.listings) == len(small.listings)  # the listings do not grow with n
    ratio = large.entries / small.entries
    assert ratio <= 2.0 * 1.01, ratio  # twice the files, twice the entries looked at
