"""The SLA sweeper: fires the escalation ladders of the clocks that are due.

The sweeper works in batches: one script claims due buckets holding about `batch` tickets
under a lease and returns their records, Python computes every transition, and one script
commits the batch: per ticket, only the lease holder on the version it read writes the state,
applies the ladder actions and appends the events (notifications and metrics follow in
Python), and each bucket is re-scored by its earliest wakeup. The next batch is claimed and
computed while Redis runs a commit. Each step fires once per clock, across sweepers and
restarts. A step that fell due while no sweeper ran fires when one comes back, and its event
says how late (``late_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
import redis
from redis.typing import EncodableT

from omnidesk.config import Action
from omnidesk.errors import OmnideskError
from omnidesk.events import EventType
from omnidesk.sla.codec import PackedFire, epoch_us, fire_packed
from omnidesk.sla.errors import SlaError
from omnidesk.sla.records import MAX_RETRIES, SlaRecords, record_body, score_us
from omnidesk.store import guarded, redis_errors

log = logging.getLogger("omnidesk.sweeper")

NotifyFn = Callable[[dict[str, str]], None]  # {ticket, queue, target, via, text}
CountFn = Callable[[str, str], None]  # (sla_warned | sla_breached, queue)

LATE_AFTER_S = 5.0  # a step fired later than this after its due time is flagged late
SWEEP_BUCKETS = 10_000  # one sweep claims at most this many buckets (~1,000,000 tickets)
RETRY_S = 60.0  # a ticket the sweeper cannot compute is tried again this much later


@dataclass(frozen=True)
class Fired:
    """One ladder step that fired."""

    ticket: str
    queue: str
    target: str
    index: int
    at: float  # fraction of the target
    due_at: datetime
    fired_at: datetime
    late_by: float  # seconds from due to fired
    breached: bool
    actions: list[str] = field(default_factory=list)

    @property
    def late(self) -> bool:
        return self.late_by > LATE_AFTER_S


@dataclass
class _Planned:
    """A claimed batch, computed: the commit script's arguments and each ticket's steps."""

    token: str
    now: datetime
    args: list[Any]
    templates: list[dict[str, Any]] = field(default_factory=list)
    template_ids: dict[tuple[str, int, str, float], int] = field(default_factory=dict)
    tickets: list[tuple[str, list[tuple[list[Action], dict[str, Any]]]]] = field(
        default_factory=list
    )


# (bucket, earliest wakeup (ms) of its tickets not claimed, [(ticket, record), ...])
Claimed = list[tuple[str, int | None, list[tuple[str, bytes]]]]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def describe(action: Action) -> str:
    if action.notify:
        return f"notify {action.notify}" + (f" via {action.via}" if action.via else "")
    if action.raise_priority:
        return f"raise priority {action.raise_priority}"
    if action.set_priority:
        return f"set priority {action.set_priority}"
    if action.move_to:
        return f"move to {action.move_to}"
    if action.reassign:
        return "reassign"
    return f"tag {action.tag}"


class SlaSweeper(SlaRecords):
    """Claims due buckets under a lease, fires their due steps, commits them in one script."""

    notify: NotifyFn | None
    count: CountFn | None
    on_fired: Callable[[Fired], None] | None
    lease_ms: int
    batch: int
    name: str
    _steps: dict[tuple[str, int], tuple[list[Action], list[str], list[Any]]]
    _commit_loaded: bool

    @guarded
    def _claim(self, now: datetime, limit: int) -> tuple[str, Claimed]:
        """Atomically take due buckets holding about `limit` due tickets under a fresh lease,
        with those tickets' records. The token is the lease's due score (expiry ms + 0.5),
        unique to this claim."""
        now_ms = epoch_us(now) // 1000
        token = f"{now_ms + self.lease_ms}.5"
        args: list[EncodableT] = [now_ms, token, limit]
        reply = self._scripts["sla_claim"](keys=[self.store.prefix], args=args)
        claimed: Claimed = []
        for i in range(0, len(reply), 3):
            bucket, rest, flat = reply[i].decode(), int(reply[i + 1]), reply[i + 2]
            records = [
                (bucket + f.decode(), raw) for f, raw in zip(flat[::2], flat[1::2], strict=True)
            ]
            claimed.append((bucket, None if rest < 0 else rest, records))
        return token, claimed

    def claim(self, now: datetime, limit: int) -> tuple[str, list[str]]:
        """Take due buckets holding about `limit` tickets under a lease; (token, ticket ids)."""
        token, got = self._claim(now, limit)
        return token, [tid for _, _, records in got for tid, _ in records]

    def sweep(self, now: datetime | None = None, limit: int = 100_000) -> list[Fired]:
        """Fire every ladder step due by `now` (claiming about `limit` tickets at most); returns
        what fired. Without `now`, each batch reads the clock, so a long sweep also takes what
        fell due while it ran.

        Batches overlap: batch k+1 is claimed before batch k's commit is sent, and computed in
        Python while Redis runs that commit (sent on a connection of its own, read afterwards).
        """
        fired: list[Fired] = []
        seen, buckets, more, retries = 0, 0, True, 0
        ready: _Planned | None = None  # computed, not sent yet
        sent: _Planned | None = None  # its commit running on `conn`
        pool = self.rb.connection_pool
        with redis_errors():
            conn: Any = pool.get_connection()  # redis-py leaves its connections untyped
        try:
            while ready is not None or sent is not None or more:
                reply = self._commit_reply(conn, sent) if sent is not None else None
                got: Claimed = []
                if more:
                    at = now or self.clock()
                    token, got = self._claim(at, min(self.batch, limit - seen))
                    seen += sum(len(records) for _, _, records in got)
                    buckets += len(got)
                    # a claim of stale buckets only (scored before their tickets' wakeups)
                    # goes on too: due ones may sort after them
                    more = bool(got) and seen < limit and buckets < SWEEP_BUCKETS
                done, sent = sent, None
                if ready is not None:
                    with redis_errors():
                        conn.send_command(
                            "EVALSHA", self._commit_sha(), 1, self.store.prefix, *ready.args
                        )
                    sent = ready
                # while Redis runs that commit: settle the previous one, compute the next
                if done is not None and reply is not None:
                    settled, moved = self._settle(done, reply)
                    fired += settled
                    if moved and retries < MAX_RETRIES and seen < limit:  # re-read those
                        more, retries = True, retries + 1
                ready = self._plan_batch(got, token, at) if got else None
        except BaseException:
            conn.disconnect()  # a reply may still be pending on it
            raise
        finally:
            pool.release(conn)
        return fired

    def _commit_sha(self) -> str:
        if not self._commit_loaded:
            with redis_errors():
                self.rb.script_load(self._scripts["sla_commit"].script)
            self._commit_loaded = True
        return str(self._scripts["sla_commit"].sha)

    def _commit_reply(self, conn: Any, planned: _Planned) -> list[Any]:
        """Read a commit sent on `conn`; a Redis that lost its script cache runs it again."""
        with redis_errors():  # NOSCRIPT is caught first: to redis_errors it is an outage
            try:
                return list(conn.read_response())
            except redis.exceptions.NoScriptError:
                self._commit_loaded = False
        return self._commit(planned.args)

    @guarded
    def _run_bucket(self, bucket: str, token: str, now: datetime) -> list[Fired]:
        """Fire what is due in one bucket this sweeper holds under `token`."""
        key = self.store.keys.sla_bucket(bucket)
        flat = cast(dict[bytes, bytes], self.rb.hgetall(key))  # the binary client
        planned = self._plan_batch(
            [(bucket, None, [(bucket + f.decode(), raw) for f, raw in flat.items()])], token, now
        )
        return self._settle(planned, self._commit(planned.args))[0]

    def _plan_batch(self, batch: Claimed, token: str, now: datetime) -> _Planned:
        """Every due step of a claimed batch and the commit script's arguments for it: per
        bucket, its earliest wakeup afterwards and the tickets that changed."""
        now_us = epoch_us(now)
        iso = now.astimezone(UTC).isoformat()
        planned = _Planned(token, now, [token, now_us // 1000, iso, ""])
        for bucket, rest, records in batch:
            head = len(planned.args)
            planned.args += [bucket, "", 0]
            earliest = rest
            for tid, raw in records:
                try:
                    args, steps, wake = self._plan(tid, raw, now, now_us, planned)
                except OmnideskError as exc:
                    # its record stays as it is; the bucket comes back for it after a pause
                    log.warning("SLA sweep of %s: %s; retrying in %.0f s", tid, exc, RETRY_S)
                    wake = str(now_us // 1000 + int(RETRY_S * 1000))
                    args, steps = [], []
                if wake and (earliest is None or int(wake) < earliest):
                    earliest = int(wake)
                if args:
                    planned.args += args
                    planned.args[head + 2] += 1
                    planned.tickets.append((tid, steps))
            planned.args[head + 1] = "" if earliest is None else str(earliest)
        planned.args[3] = msgspec.json.encode(planned.templates)
        return planned

    @guarded
    def _commit(self, args: list[Any]) -> list[Any]:
        if len(args) <= 4:  # lease, now_ms, now_iso, templates: no bucket
            return []
        return list(self._scripts["sla_commit"](keys=[self.store.prefix], args=args))

    def _settle(self, planned: _Planned, reply: list[Any]) -> tuple[list[Fired], int]:
        """What a commit fired (metrics and notifications go out now), and how many tickets
        an intake transition changed meanwhile (their buckets are due again at once)."""
        fired: list[Fired] = []
        moved, pos = 0, 0
        for tid, steps in planned.tickets:
            status = int(reply[pos])
            pos += 1
            if status == -1:
                moved += 1  # an intake transition got in first: the next claim re-reads it
                continue
            if status == -2:
                continue  # lost the lease: whoever holds it now carries on
            for actions, fields in steps:
                record = Fired(ticket=tid, queue=reply[pos].decode(), **fields)
                pos += 1
                fired.append(record)
                self._after(record, actions)
        return fired, moved

    def _ladder_step(self, policy: str, index: int) -> tuple[list[Action], list[str], list[Any]]:
        """A ladder step's actions, described, and as the commit script reads them (cached)."""
        key = (policy, index)
        if key not in self._steps:
            ladder = self.ctx.policy(policy).ladder
            if index >= len(ladder):  # the config lost that rung since the clock started
                raise SlaError(f"SLA policy {policy!r} has no ladder step {index}")
            actions = ladder[index].actions
            self._steps[key] = (
                actions,
                [describe(a) for a in actions],
                [a.model_dump(exclude_none=True, mode="json") for a in actions],
            )
        return self._steps[key]

    def _template(self, planned: _Planned, step: PackedFire) -> int:
        """The batch's event template for one ladder step on one target (1-based, for Lua)."""
        policy, index, at = step.policy, step.index, step.at
        key = (policy, index, step.target, at)
        if key not in planned.template_ids:
            _, described, dumped = self._ladder_step(policy, index)
            planned.templates.append(
                {
                    "kind": EventType.SLA_BREACHED if at >= 1.0 else EventType.SLA_WARNED,
                    "event": {
                        "target": step.target,
                        "at": f"{at:g}",
                        "step": f"{at:g}",
                        "policy": policy,
                        "actions": "; ".join(described),
                    },
                    "actions": dumped,
                }
            )
            planned.template_ids[key] = len(planned.templates)
        return planned.template_ids[key]

    def _plan(
        self, tid: str, raw: bytes, now: datetime, now_us: int, planned: _Planned
    ) -> tuple[list[Any], list[tuple[list[Action], dict[str, Any]]], str]:
        """One ticket's commit arguments ([] when its record stays as it is), the steps they
        fire (a `Fired` but its queue), and its wakeup afterwards. Fires on the packed record
        (`fire_packed`, the same transition as `fire_step`); each step's event is its
        template plus "<template> <due> <late_s> <late>". A ticket whose deadline passed with
        no step firing is committed too: its wakeup moves on, it joins the overdue index and
        counts as breached."""
        version_text, _, old_body = raw.partition(b"|")
        if not version_text.isdigit():
            raise SlaError(f"stored SLA state of {tid} is unreadable: no version")
        packed = old_body.partition(b"|")[2]
        new, done, wake, deadline, standing = fire_packed(packed, now_us)
        wake_ms, overdue = score_us(wake, deadline, now_us)
        body = record_body(new or packed, wake_ms)
        if not done and body == old_body:
            return [], [], wake_ms
        steps: list[tuple[list[Action], dict[str, Any]]] = []
        events: list[str] = []
        for step in done:
            actions, described, _ = self._ladder_step(step.policy, step.index)
            template = self._template(planned, step)
            due_at = _EPOCH + timedelta(microseconds=step.due_us)
            late = "1" if step.late_by > LATE_AFTER_S else "0"
            events.append(f"{template} {due_at.isoformat()} {step.late_by:.3f} {late}")
            fields = {
                "target": step.target,
                "index": step.index,
                "at": step.at,
                "due_at": due_at,
                "fired_at": now,
                "late_by": step.late_by,
                "breached": step.at >= 1.0,
                "actions": described,
            }
            steps.append((actions, fields))
        args = [tid, int(version_text), body, overdue, ";".join(events), standing]
        return args, steps, wake_ms

    def _after(self, record: Fired, actions: list[Action]) -> None:
        """Outside the script: metrics and notifications (a failure here is logged only)."""
        kind = "sla_breached" if record.breached else "sla_warned"
        try:
            if self.count is not None:
                self.count(kind, record.queue)
            if self.on_fired is not None:
                self.on_fired(record)
            for action in actions:
                if action.notify and self.notify is not None:
                    what = "breached" if record.breached else f"at {record.at:.0%} of"
                    self.notify(
                        {
                            "ticket": record.ticket,
                            "queue": record.queue,
                            "target": action.notify,
                            "via": action.via or "log",
                            "text": f"{record.ticket}: {what} its {record.target} target",
                        }
                    )
        except Exception:
            log.exception("SLA notify/metrics failed for %s", record.ticket)

    async def run_sweeper(self, stop: asyncio.Event, interval: float = 0.25) -> None:
        """The daemon's loop: sweep, then wait `interval` seconds or until `stop` is set."""
        while not stop.is_set():
            try:
                fired = await asyncio.to_thread(self.sweep)
                if fired:
                    log.info("SLA sweep fired %d steps", len(fired))
            except OmnideskError as exc:
                log.warning("SLA sweep failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
