"""The quarantine is bounded on the real Redis: a big payload is kept as an excerpt (the
archive has it whole), the bytes kept in all stay under a cap, old items are purged on the
next put or by `omnidesk quarantine purge`, and every rejection is counted by reason."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from omnidesk.archive import Archive
from omnidesk.cli import main as cli
from omnidesk.config import QuarantineLimits
from omnidesk.model import Channel, RawPayload
from omnidesk.quarantine import Quarantine, item_id
from omnidesk.store import Store
from tests.storekit import REDIS_URL, write_config

LIMITS = QuarantineLimits(item_max_bytes=1000, max_bytes=2500, excerpt_bytes=100)


def junk(n: int, size: int = 1000) -> RawPayload:
    body = (f"{n:06d}" + "x" * size)[:size].encode()
    return RawPayload(
        channel=Channel.WEB,
        account="site",
        payload=body,
        received_at=datetime.now(UTC),
        source=f"test:{n}",
    )


@pytest.fixture
def store(prefix: str) -> Store:
    return Store.from_url(REDIS_URL, prefix)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive(tmp_path / "state")


def test_a_payload_over_the_item_cap_keeps_an_excerpt_and_reads_back_from_the_archive(
    store: Store, archive: Archive
) -> None:
    quarantine = Quarantine(store, LIMITS, archive=archive)
    big = junk(1, size=50_000)
    archive.put(big.payload)
    qid = quarantine.put(big, "not_json", "web form: not JSON")
    key = store.key("quarantine", qid)
    assert store.r.hstrlen(key, "payload") == 0  # never the whole junk in Redis
    assert store.r.hstrlen(key, "excerpt") == 100
    item = quarantine.get(qid)
    assert item is not None and item.kept == 0 and item.archived and item.size == 50_000
    assert item.raw().payload == big.payload  # a retry still has all of it

    lost = junk(2, size=50_000)  # never archived: only the excerpt is left, and it says so
    item = quarantine.get(quarantine.put(lost, "not_json", "web form: not JSON"))
    assert item is not None and not item.archived and item.excerpt == lost.payload[:100]
    with pytest.raises(Exception, match="excerpt"):
        item.raw()


def test_the_bytes_kept_in_all_stay_under_the_cap(store: Store) -> None:
    quarantine = Quarantine(store, LIMITS)
    ids = [quarantine.put(junk(n), "not_json", "bad") for n in range(4)]
    quarantine.put(junk(0), "not_json", "bad")  # a retried batch: one item, counted once
    kept = [quarantine.get(qid).kept for qid in ids]  # type: ignore[union-attr]
    assert kept == [1000, 1000, 0, 0]
    assert quarantine.usage()["bytes_kept"] == 2000
    assert quarantine.get(ids[0]).attempts == 2  # type: ignore[union-attr]
    quarantine.remove(ids[0])
    assert quarantine.usage()["bytes_kept"] == 1000
    assert quarantine.get(quarantine.put(junk(9), "x", "bad")).kept == 1000  # type: ignore[union-attr]


def test_every_rejection_is_counted_by_reason_kept_or_not(store: Store) -> None:
    quarantine = Quarantine(store, LIMITS)
    for n in range(3):
        quarantine.put(junk(n, size=5000), "too_large", "over")
    quarantine.put(junk(7, size=10), "not_json", "bad")
    usage = quarantine.usage()
    assert usage["rejected"] == {"too_large": 3, "not_json": 1}
    assert usage["rejected_bytes"] == {"too_large": 15_000, "not_json": 10}
    assert usage["bytes_kept"] == 10 and usage["items"] == 4


def age(store: Store, qid: str, days: float) -> None:
    """Make an item look quarantined `days` ago (the index score is its quarantine time)."""
    store.r.zadd(store.key("quarantine"), {qid: time.time() - days * 86400}, xx=True)


def test_items_past_the_age_limit_go_on_the_next_put(store: Store) -> None:
    quarantine = Quarantine(store, LIMITS)
    old, recent = (quarantine.put(junk(n), "not_json", "bad") for n in range(2))
    age(store, old, days=31)
    quarantine.put(junk(5), "not_json", "bad")
    assert quarantine.get(old) is None and quarantine.get(recent) is not None
    assert store.r.zscore(store.key("quarantine"), old) is None
    assert quarantine.usage()["bytes_kept"] == 2000 and quarantine.usage()["purged"] == 1


def test_purge_from_the_command_line(
    store: Store, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(prefix, tmp_path / "state", tmp_path / "config.yaml")
    quarantine = Quarantine(store)
    ids = [quarantine.put(junk(n), "not_json", "bad") for n in range(3)]
    age(store, ids[0], days=2)
    assert cli(["quarantine", "--config", str(config), "purge", "--older-than", "1d"]) == 0
    assert quarantine.size() == 2
    assert cli(["quarantine", "--config", str(config), "purge"]) == 0  # 30 days: none
    assert quarantine.size() == 2
    assert cli(["quarantine", "--config", str(config), "stats"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["purged 1 items", "purged 0 items"]
    assert json.loads(out[2])["rejected"] == {"not_json": 3}
    assert item_id(junk(1)) in {i.id for i in quarantine.list()}


def test_purge_by_age_and_reason(
    store: Store, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(prefix, tmp_path / "state", tmp_path / "config.yaml"))
    quarantine = Quarantine(store)
    old_json, old_form, old_other, new_json = (
        quarantine.put(junk(n), reason, "bad")
        for n, reason in enumerate(["not_json", "invalid_form", "too_large", "not_json"])
    )
    for qid in (old_json, old_form, old_other):
        age(store, qid, days=8)
    purge = ["quarantine", "--config", config, "purge", "--older-than", "7d"]
    assert cli([*purge, "--reason", "not_json", "--reason", "invalid_form"]) == 0
    left = {i.id for i in quarantine.list()}
    assert left == {old_other, new_json}  # the recent not_json and the other reason stay
    assert cli([*purge, "--reason", "not_json"]) == 0  # the recent one is not 7 days old
    assert {i.id for i in quarantine.list()} == {old_other, new_json}
    assert cli(["quarantine", "--config", config, "purge", "--older-than", "0s"]) == 0
    assert quarantine.size() == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["purged 2 items", "purged 0 items", "purged 2 items"]
    assert quarantine.usage()["rejected"] == {"not_json": 2, "invalid_form": 1, "too_large": 1}


def test_purge_refuses_bad_filters_in_one_line_and_drops_nothing(
    store: Store, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(prefix, tmp_path / "state", tmp_path / "config.yaml"))
    quarantine = Quarantine(store)
    qid = quarantine.put(junk(1), "not_json", "bad")
    age(store, qid, days=30)
    for bad in (["--older-than", "a week"], ["--older-than", "0s", "--reason", "Not JSON!"]):
        assert cli(["quarantine", "--config", config, "purge", *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("omnidesk quarantine: --")
    assert quarantine.size() == 1
