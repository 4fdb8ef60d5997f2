"""scripts/test waits for another apt or dpkg instead of failing at once: its `apt_locked`
(scripts/apt_locked.sh) against the real apt-get, with the archives lock held by another
process the way apt holds it (an fcntl lock). `apt-get clean` takes that lock as `install`
does; a failure that is not a lock still fails at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHIVES_LOCK = "/var/cache/apt/archives/lock"
HOLD_S = 5.0

pytestmark = pytest.mark.skipif(
    shutil.which("apt-get") is None or os.geteuid() != 0, reason="needs apt-get, as root"
)

HOLDER = """
import fcntl, sys, time
f = open(sys.argv[1], "w")
fcntl.lockf(f, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def archives_locked() -> Iterator[float]:
    """The archives lock held by another process for HOLD_S seconds from the yielded time."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, ARCHIVES_LOCK, str(HOLD_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    yield time.monotonic()
    holder.kill()
    holder.wait()


def apt_locked(*args: str) -> subprocess.CompletedProcess[str]:
    script = f"source scripts/apt_locked.sh; apt_locked {' '.join(args)}"
    return subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={**os.environ, "APT_RETRY_SECONDS": "0.5", "APT_RETRY_TIMES": "40"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_held_archives_lock_is_waited_for(archives_locked: float) -> None:
    # what scripts/test ran before: apt's own lock timeout does not cover this lock
    plain = subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=900", "clean"], capture_output=True, text=True
    )
    assert plain.returncode != 0 and "Unable to lock" in plain.stderr
    assert time.monotonic() - archives_locked < HOLD_S  # it gave up at once

    done = apt_locked("clean")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - archives_locked >= HOLD_S  # it waited for the holder
    assert "another apt or dpkg holds a lock; waiting" in done.stderr


def test_a_failure_that_is_not_a_lock_fails_at_once() -> None:
    started = time.monotonic()
    done = apt_locked("install", "-y", "-qq", "no-such-package-od-issue14")
    assert done.returncode == 1
    assert "Unable to locate package" in done.stderr
    assert "waiting" not in done.stderr
    assert time.monotonic() - started < 30
