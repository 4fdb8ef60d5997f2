"""Issue 13's "Done when": with the daemon running, a kill -9 of the daemon and of a worker,
and a PostgreSQL restart mid-run, 5,000 dropped payloads end as exactly 5,000 messages in
PostgreSQL, with no duplicates. Real services: the daemon (`omnidesk run`, whose background
writer drains the events stream into PostgreSQL), two `omnidesk worker` processes, Redis,
and a PostgreSQL of the test's own (tests/private_pg.py) that is crashed, restarted and
stopped for a while; the shared server on 5432 is never touched.

The 5,000 mails are dropped at a steady rate, so every fault lands while intake and the
writer are busy (all at once, the whole run takes about 7 s: too short to hit):
  - the daemon is SIGKILLed while the writer holds a batch it has not acknowledged (those
    entries are its dead consumer's until the next daemon claims them);
  - PostgreSQL is stopped (`-m fast`) for `PG_STOP_S` while the feed goes on;
  - the daemon is SIGKILLed again during that outage, holding the batch it failed to write;
  - a worker is SIGKILLed while it holds ingest batches;
  - PostgreSQL is started, and SIGKILLed (crash recovery) while the writer works through
    the backlog, and restarted at once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from omnidesk.db.writer import GROUP
from tests.chaosaudit import MARKER, client_for, count_markers, live_brokers
from tests.chaosprocs import Managed
from tests.private_pg import server_missing
from tests.recordskit import RecordsRig, wait_until
from tests.workerkit import writers_of

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

PAYLOADS = 5_000  # the number: not to be shrunk
FEED_S = 36.0  # the mails are dropped evenly over this long
# When each fault hits, in seconds from the feed's start. A killed daemon's unacknowledged
# batch is claimed by the next one after the writer's claim_idle_ms (30 s, looked for every
# 5 s): the daemon goes first, so that wait ends about with the feed (DRAIN_S covers it).
DAEMON_KILL_AT = 3.0
PG_STOP_AT = 7.0
PG_STOP_S = 20.0
DAEMON_OUTAGE_KILL_AT = 10.0
WORKER_KILL_AT = 15.0
PG_KILL_AT = PG_STOP_AT + PG_STOP_S + 1.0
DRAIN_S = 60.0  # after the feed: bound on the wait for the writer's backlog to reach 0
STREAM_BOUND = 600  # entries left in the events stream once the writer has caught up


@pytest.fixture
def workdir() -> Iterator[Path]:
    if why := server_missing():
        pytest.skip(why)
    path = Path(tempfile.mkdtemp(prefix="od-pgchaos-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class DropFeed(threading.Thread):
    """Drops `markers` into the folder evenly over `seconds`, in slices of 1/20 s."""

    def __init__(self, rig: RecordsRig, markers: list[str], seconds: float) -> None:
        super().__init__(name="records-chaos-feed", daemon=True)
        self.rig, self.markers, self.seconds = rig, markers, seconds
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started, step = time.monotonic(), 0.05
            slices = max(1, int(self.seconds / step))
            per = -(-len(self.markers) // slices)
            for n in range(slices):
                part = self.markers[n * per : (n + 1) * per]
                if not part:
                    break
                self.rig.drop_mail(part)
                time.sleep(max(0.0, started + (n + 1) * step - time.monotonic()))
        except BaseException as exc:  # reported by the test, never a silent stop
            self.error = exc


@dataclass
class Faults:
    """What was done, and when (seconds from the feed's start), for the failure message."""

    started: float
    lines: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        line = f"+{time.monotonic() - self.started:5.1f}s {text}"
        self.lines.append(line)
        print(line, flush=True)


def _arm(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Wait, bounded, for the moment a fault is meant to hit."""
    return wait_until(check, timeout, every=0.005)


def _writer_holds_a_batch(rig: RecordsRig) -> bool:
    """The running daemon's writer has read entries it has not acknowledged yet (its
    consumer is named host:pid:random); a dead daemon's leftovers do not count."""
    return any(f":{rig.daemon.pid}:" in name for name in _writer_consumers(rig))


def _writer_consumers(rig: RecordsRig) -> set[str]:
    """The writer consumers holding entries not yet acknowledged."""
    summary = rig.store.r.xpending(rig.store.key("events"), GROUP)
    return {c["name"] for c in summary.get("consumers") or [] if int(c["pending"]) > 0}


def _group_consumers(rig: RecordsRig) -> list[str]:
    return [c["name"] for c in rig.store.r.xinfo_consumers(rig.store.key("events"), GROUP)]


def _consumer_pids(rig: RecordsRig) -> set[int]:
    """The pids in the records group's consumer names (host:pid:random)."""
    return {int(name.split(":")[1]) for name in _group_consumers(rig)}


def _broker_ids_of(rig: RecordsRig, target: Managed) -> set[str]:
    """The dramatiq broker ids `target` beats under: those whose heartbeat still moves while
    the other workers are paused (SIGSTOP) for a moment (the daemon's, which only sends and
    never holds a batch, moves too)."""
    others = [w for w in rig.workers if w is not target]
    beats = rig.store.key("dramatiq", "__heartbeats__")
    before = dict(rig.store.r.zrange(beats, 0, -1, withscores=True))
    for proc in others:
        os.kill(proc.pid, signal.SIGSTOP)
    try:
        time.sleep(0.4)  # an idle worker beats ten times a second per queue
        after = dict(rig.store.r.zrange(beats, 0, -1, withscores=True))
    finally:
        for proc in others:
            os.kill(proc.pid, signal.SIGCONT)
    return {bid for bid, beat in after.items() if beat > before.get(bid, 0)}


def _holds_a_batch(rig: RecordsRig, broker_ids: set[str]) -> bool:
    client = client_for(rig.redis_url)
    try:
        held = live_brokers(client, rig.prefix)
    finally:
        client.close()
    return any(held.get(bid, 0) > 0 for bid in broker_ids)


def message_id(marker: str) -> str:
    """The external id a dropped mail's message is kept under: its Message-ID, as the
    e-mail normaliser folds it (lower case, with the angle brackets)."""
    return f"<{marker}@chaos.test>".lower()


def _whereabouts(rig: RecordsRig, markers: list[str]) -> str:
    """For payloads not written once: their tickets in Redis, and what PostgreSQL has of
    those tickets and their events (the first few)."""
    written = {external_id for (external_id,) in rig.rows("SELECT external_id FROM messages")}
    missing = [m for m in markers if message_id(m) not in written]
    lines = [f"{len(missing)} payloads not in PostgreSQL"]
    r, key = rig.store.r, rig.store.key
    by_subject: dict[str, str] = {}
    for tid in r.zrange(key("tickets"), 0, -1):
        subject = r.hget(key("ticket", tid), "subject") or ""
        for m in MARKER.findall(subject):
            by_subject[m] = tid
    for marker in missing[:5]:
        tid = by_subject.get(marker, "?")
        ticket = rig.rows("SELECT status, synced_pos FROM tickets WHERE id = %s", tid)
        events = rig.rows("SELECT stream_id, type FROM events WHERE ticket_id = %s", tid)
        lines.append(f"  {marker}: redis ticket {tid}; pg ticket {ticket}; pg events {events}")
    return "\n".join(lines)


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


@pytest.mark.timeout(300)
def test_5000_dropped_payloads_reach_postgresql_once_through_kills_and_restarts(workdir):
    began = time.monotonic()
    with RecordsRig(workdir, workers=2, worker_threads=2, drop_batch=50) as rig:
        print(f"rig up after {time.monotonic() - began:.1f} s", flush=True)
        markers = rig.markers(PAYLOADS)
        feed = DropFeed(rig, markers, FEED_S)
        started = time.monotonic()
        faults = Faults(started)
        feed.start()

        # the daemon, mid-batch on a healthy PostgreSQL (its transaction dies with it)
        _sleep_until(started + DAEMON_KILL_AT)
        armed = _arm(lambda: _writer_holds_a_batch(rig))
        rig.daemon.kill()
        faults.note(f"daemon SIGKILLed ({'holding' if armed else 'NOT holding'} a batch)")
        rig.start_daemon()
        faults.note("daemon back")

        # PostgreSQL stopped while the feed goes on: /healthz says so, the backlog grows
        _sleep_until(started + PG_STOP_AT)
        rig.pg.stop("fast")
        faults.note("postgresql stopped")
        # a writer with nothing in hand notices at its next probe (every 5 s when idle): the
        # workers' writers share the stream now, so the daemon's is often idle
        saw_down = wait_until(lambda: rig.health()["records"]["ok"] is False, 12)
        down_health = rig.health()

        # the daemon again, during the outage: the batch it failed to write is its own
        # pending, never acknowledged, left to the next daemon
        _sleep_until(started + DAEMON_OUTAGE_KILL_AT)
        armed = _arm(lambda: _writer_holds_a_batch(rig))
        rig.daemon.kill()
        faults.note(f"daemon SIGKILLed in the outage ({'holding' if armed else 'NOT holding'})")
        rig.start_daemon()
        faults.note("daemon back")

        _sleep_until(started + WORKER_KILL_AT)
        mine = _broker_ids_of(rig, rig.workers[0])
        armed = _arm(lambda: _holds_a_batch(rig, mine))
        rig.workers[0].kill()
        faults.note(f"worker-0 SIGKILLed ({'holding' if armed else 'NOT holding'} batches)")
        rig.workers[0].start()

        _sleep_until(started + PG_STOP_AT + PG_STOP_S)
        backlog_at_restart = rig.stream_backlog()
        rig.pg.start()
        faults.note(f"postgresql started; writer backlog {backlog_at_restart}")

        # PostgreSQL crashes while the writer works through that backlog (it reconnects
        # within its backoff, at most 5 s)
        _sleep_until(started + PG_KILL_AT)
        armed = _arm(lambda: _writer_holds_a_batch(rig), timeout=8.0)
        rig.pg.kill()
        faults.note(f"postgresql SIGKILLed ({'mid-batch' if armed else 'between batches'})")
        rig.pg.start()
        faults.note("postgresql back (crash recovery)")

        feed.join(timeout=FEED_S + 30)
        faults.note("feed done")
        assert feed.error is None, feed.error
        assert not feed.is_alive()

        # everything taken from the folder, stored in Redis and written to PostgreSQL
        caught_up = wait_until(
            lambda: (
                rig.waiting_files() == 0
                and rig.stream_backlog() == 0
                and rig.pg_count() == PAYLOADS
            ),
            DRAIN_S,
        )
        faults.note(
            f"drained: {caught_up}; {rig.pg_count()} messages, backlog {rig.stream_backlog()}"
        )
        trimmed = wait_until(lambda: rig.stream_length() <= STREAM_BOUND, 15)
        # the killed processes' consumers are forgotten once their entries were claimed:
        # the group is the live daemon's writer and the live workers' (each writes too, in a
        # child process of its own)
        live = {rig.daemon.pid, *(pid for w in rig.workers for pid in writers_of(w.pid))}
        pruned = wait_until(lambda: _consumer_pids(rig) == live, 15)
        # /healthz gives the daemon's writer's last look, up to a round behind Redis: the
        # last claimed entries may have been written by another consumer a moment ago
        wait_until(lambda: rig.health()["records"]["backlog"] == 0, 10)
        health = rig.health()
        faults.note(f"stream {rig.stream_length()} entries; healthz records {health['records']}")
        story = "\n".join(faults.lines) + f"\n{rig.exited()}"
        if rig.pg_count() != PAYLOADS:
            story += "\n" + _whereabouts(rig, markers)

        # Redis: each payload stored once
        client = client_for(rig.redis_url)
        try:
            in_redis = count_markers(client, rig.prefix)
        finally:
            client.close()
        assert sorted(in_redis) == sorted(markers), story
        assert {m: n for m, n in in_redis.items() if n != 1} == {}, story

        # PostgreSQL: exactly one inbound message per payload, under its Message-ID
        assert caught_up, story
        inbound = rig.rows(
            "SELECT external_id, ticket_id, subject FROM messages WHERE direction = 'in'"
        )
        assert len(inbound) == PAYLOADS, story
        assert rig.rows("SELECT count(*) FROM messages") == [(PAYLOADS,)], story
        expected = {message_id(m): m for m in markers}
        external = [external_id for external_id, _, _ in inbound]
        assert len(set(external)) == PAYLOADS, story
        assert set(external) == set(expected), story

        # one ticket per payload: no payload opened a second ticket whose message the
        # writer then left out as a copy (a ticket without messages would show it)
        tickets = rig.rows(
            "SELECT t.id, count(m.id) FROM tickets t LEFT JOIN messages m ON m.ticket_id = t.id"
            " GROUP BY t.id"
        )
        assert len(tickets) == PAYLOADS, story
        assert [t for t in tickets if t[1] != 1] == [], story
        subjects = [re.findall(MARKER, s or "") for _, _, s in inbound]
        assert sorted(s[0] for s in subjects) == sorted(markers), story

        # the events: every stream entry once; one ticket_opened per ticket
        opened = rig.rows(
            "SELECT t.id, count(e.stream_id) FROM tickets t"
            " LEFT JOIN events e ON e.ticket_id = t.id AND e.type = 'ticket_opened'"
            " GROUP BY t.id HAVING count(e.stream_id) <> 1"
        )
        assert opened == [], story
        assert rig.rows("SELECT count(*) FROM events WHERE type = 'ticket_opened'") == [
            (PAYLOADS,)
        ], story
        added = int(rig.store.r.xinfo_stream(rig.store.key("events"))["entries-added"])
        assert rig.rows("SELECT count(*), count(DISTINCT stream_id) FROM events") == [
            (added, added)
        ], story
        assert rig.rows("SELECT count(*) FROM events_default") == [(0,)], story

        # the stream was trimmed behind the writer: bounded, not the whole history
        assert trimmed, f"{rig.stream_length()} of {added} entries left\n{story}"

        assert pruned, (_group_consumers(rig), live)

        # /healthz said so while PostgreSQL was stopped, and says it is back now
        assert saw_down, json.dumps(down_health)
        assert "postgresql_down" in down_health["degraded"], json.dumps(down_health)
        assert backlog_at_restart > 0, story
        assert health["records"]["ok"] is True, json.dumps(health)
        assert health["records"]["backlog"] == 0, json.dumps(health)
        assert rig.exited() == [], story
        print(f"checked after {time.monotonic() - began:.1f} s", flush=True)
    print(f"rig down after {time.monotonic() - began:.1f} s", flush=True)
