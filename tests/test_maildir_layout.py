"""The drop folder's layout on real files and the real pipeline: `new/`, `cur/` and `tmp/`
are there from start-up, a `new/` that is removed and made again is read without a restart,
and a file put straight in the folder is still taken."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import dramatiq
import pytest

from connectors.maildir import MaildirConfig, MaildirConnector
from omnidesk.pipeline import Pipeline
from tests.services import eventually
from tests.test_maildir import Handed, dropped, form


async def taken(conn: MaildirConnector, sink: Handed, source: str, limit: int = 50) -> None:
    """Passes until `source` was handed over (a bounded number: a file never taken fails)."""
    for _ in range(limit):
        if source in sink.sources():
            return
        await conn.run_once(sink)
    raise AssertionError(f"{source} never handed over; handed: {sink.sources()}")


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[tuple[Path, MaildirConnector]]:
    """A drop folder as an operator makes it: `mkdir /var/spool/omnidesk`, nothing in it."""
    root = tmp_path / "drop"
    root.mkdir()
    async with MaildirConnector(MaildirConfig(name="drop", path=str(root))) as conn:
        yield root, conn


async def test_new_cur_and_tmp_are_made_at_start_up(
    bare: tuple[Path, MaildirConnector], pipeline: Pipeline
) -> None:
    root, conn = bare
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["cur", "new", "tmp"]
    # a writer following the documented convention finds both folders there
    dropped(root / "tmp" / "a.web.json", form("a", "a complaint")).rename(
        root / "new" / "a.web.json"
    )
    await taken(conn, Handed(pipeline), "maildir:a.web.json")
    assert (root / "cur" / "a.web.json").exists()


async def test_a_new_folder_removed_and_made_again_is_read_without_a_restart(
    bare: tuple[Path, MaildirConnector],
    pipeline: Pipeline,
    worker: dramatiq.Worker,
) -> None:
    root, conn = bare
    sink = Handed(pipeline)
    shutil.rmtree(root / "new")
    await conn.run_once(sink)  # no error: the pass makes it again
    assert (root / "new").is_dir()
    shutil.rmtree(root / "new")
    (root / "new").mkdir()  # a writer's own `mkdir -p new` after a cleanup
    dropped(root / "new" / "b.web.json", form("b", "second complaint"))
    await taken(conn, sink, "maildir:b.web.json")
    store = pipeline.runtime.store
    assert await eventually(lambda: store.ticket_count() == 1, timeout=20)


async def test_a_file_straight_in_the_folder_is_still_taken(
    bare: tuple[Path, MaildirConnector], pipeline: Pipeline
) -> None:
    root, conn = bare
    dropped(root / "c.web.json", form("c", "third complaint"))
    dropped(root / "new" / "c.web.json", form("c2", "same name in new/"))
    sink = Handed(pipeline)
    await taken(conn, sink, "maildir:c.web.json")
    for _ in range(5):
        await conn.run_once(sink)
    assert sink.sources() == ["maildir:c.web.json", "maildir:c.web.json"]
    assert not (root / "c.web.json").exists() and not (root / "new" / "c.web.json").exists()
