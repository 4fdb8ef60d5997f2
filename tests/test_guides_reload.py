"""Guides are read again on SIGHUP, like the config: a daemon running in this process (its
HTTP door on a free port, the real Redis) serves a guide added to the folder after
`reload()`, and keeps its guides when a reload finds a broken one."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from omnidesk.service import Daemon, DaemonOptions
from tests.agentkit import AGENTS_CONFIG
from tests.guidekit import GUIDES
from tests.storekit import REDIS_URL

NEW_GUIDE = """---
title: "مواعيد الفروع في رمضان"
lang: ar
service: branches
tags: ["رمضان", "مواعيد العمل"]
audience: [consumers, businesses]
---

تعمل الفروع في شهر رمضان من العاشرة صباحاً حتى الثالثة عصراً.
"""


@pytest.fixture
async def daemon(prefix: str, tmp_path: Path) -> AsyncIterator[Daemon]:
    folder = tmp_path / "kb"
    folder.mkdir()
    for name in ("refund-ar.md", "refund-en.md"):
        shutil.copy(GUIDES / name, folder / name)
    config = tmp_path / "queue_config.yaml"
    service = (
        f"service:\n  redis_url: {REDIS_URL}\n  key_prefix: {prefix}\n"
        f"  state_dir: {tmp_path / 'state'}\n  http_host: 127.0.0.1\n"
    )
    config.write_text(
        service + AGENTS_CONFIG.read_text("utf-8") + "guides: {folder: kb}\n", "utf-8"
    )
    options = DaemonOptions(config=str(config), workers=0, http_port=0, drain_timeout=5)
    async with Daemon(options) as d:
        yield d


async def slugs(daemon: Daemon, query: str) -> list[str]:
    url = f"http://127.0.0.1:{daemon.http_port}/guides/suggest"
    async with aiohttp.ClientSession() as session, session.get(url, params={"q": query}) as r:
        assert r.status == 200
        return [g["slug"] for g in (await r.json())["guides"]]


async def test_sighup_reads_the_guides_again(daemon: Daemon, tmp_path: Path) -> None:
    assert await slugs(daemon, "الاسترجاع") == ["refund-ar"]
    assert await slugs(daemon, "مواعيد رمضان") == []
    (tmp_path / "kb" / "ramadan-hours-ar.md").write_text(NEW_GUIDE, "utf-8")
    assert await slugs(daemon, "مواعيد رمضان") == []  # not before the reload
    daemon.reload()
    assert await slugs(daemon, "مواعيد رمضان") == ["ramadan-hours-ar"]

    # a broken guide: the reload is refused, and the guides in service stay
    (tmp_path / "kb" / "broken-ar.md").write_text(NEW_GUIDE.replace("lang: ar", "lang: fr"))
    (tmp_path / "kb" / "refund-en.md").unlink()
    before = daemon.loaded
    daemon.reload()
    assert daemon.loaded is before
    assert await slugs(daemon, "refund") == ["refund-en"]
