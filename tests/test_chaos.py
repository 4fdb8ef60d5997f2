"""Issue 12's "Done when", kept short for CI: the real daemon, two worker processes and a
Redis of their own (AOF, fsync always), fed through the drop folder, IMAP and the web form,
while Redis is SIGKILLed twice, each worker once and the daemon once. Every payload a source
took must be in the store exactly once; bench/chaos.py is the long form (tests/chaoskit.py)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaoskit import ChaosPlan, run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.imap]
RECOVERY_BOUND_S = 60  # the bound: a dead process's batches back in service


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Removed at teardown whatever happened (the AOF and the archive are run-sized)."""
    path = Path(tempfile.mkdtemp(prefix="od-chaos-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(420)  # the drain is bounded at 120 s; a failing run still ends
def test_kills_of_redis_workers_and_the_daemon_lose_and_duplicate_nothing(dovecot, workdir):
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server binary")
    report = run_chaos(ChaosPlan(), dovecot, workdir)
    account = report.account()
    print(account)
    print(json.dumps(report.figures()))
    assert [f.kind for f in report.faults] == ["redis", "worker", "redis", "worker", "daemon"]
    assert {f.target for f in report.faults if f.kind == "worker"} == {"worker-0", "worker-1"}
    assert not report.feeder_errors, account
    assert report.not_accepted == [], account  # every web post got its 2xx in the end
    assert report.lost == [], account
    assert report.duplicated == {}, account
    # from each replacement being up until every payload outstanding at the kill was stored
    assert report.max_recovery_s is not None and report.max_recovery_s < RECOVERY_BOUND_S, account
