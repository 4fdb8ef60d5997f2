"""Ticket archive: closed tickets past an age move out of Redis into gzip JSON lines per month.

``<state_dir>/archive/YYYY-MM.jsonl.gz`` (the month the ticket was created) holds one JSON
object per line: {"ticket": {...}, "messages": [...], "customer": {...}, "sla": {...},
"archived_at"} ("sla": the ticket's SLA clocks, steps fired and pauses). What else Redis
keeps for the ticket leaves with it (omnidesk/lua/forget.lua): its SLA record and per-queue
count, its messages' dedupe entries and the thread keys still pointing to it, so a message
arriving on an archived thread opens a new ticket.
Each run appends one gzip member per file under an exclusive lock (a multi-member gzip is one
valid stream), fsyncs it, and only then deletes the tickets from the hot store, so a crash
in between leaves a ticket in both places, never in neither; search keeps the last copy.
The rollups keep their figures (the fold's counters never read the ticket). Archive files
are deleted only by `prune`, and only once their month is older than the retention.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from omnidesk.errors import TransientError
from omnidesk.model import to_builtins
from omnidesk.sla import SlaState
from omnidesk.store import Store, guarded
from omnidesk.sweeper import archived
from omnidesk.text import fold

ARCHIVABLE = ("closed", "resolved")


class TicketArchive:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.root = Path(state_dir) / "archive"

    def months(self) -> list[Path]:
        return sorted(self.root.glob("*.jsonl.gz")) if self.root.exists() else []

    # ------------------------------------------------------------ moving tickets out

    @guarded
    def candidates(self, store: Store, older_than_days: float, now: datetime) -> list[str]:
        """Closed/resolved tickets whose last change is older than the age."""
        cutoff = now - timedelta(days=older_than_days)
        ids: list[str] = []
        for status in ARCHIVABLE:
            ids += store.r.zrange(store.key("status", status), 0, -1)
        pipe = store.r.pipeline(transaction=False)
        for tid in ids:
            pipe.hget(store.key("ticket", tid), "updated_at")
        out = []
        for tid, updated in zip(ids, pipe.execute(), strict=True):
            if updated and datetime.fromisoformat(updated) < cutoff:
                out.append(tid)
        return sorted(out)

    def run(
        self, store: Store, older_than_days: float, now: datetime | None = None, batch: int = 500
    ) -> list[str]:
        """Archive every candidate; returns the ids moved."""
        now = now or datetime.now(UTC)
        ids = self.candidates(store, older_than_days, now)
        moved: list[str] = []
        for i in range(0, len(ids), batch):
            states = archived(store, ids[i : i + batch])
            records = self._records(store, ids[i : i + batch], now, states)
            by_month: dict[str, list[dict[str, Any]]] = {}
            for rec in records:
                by_month.setdefault(rec["ticket"]["created_at"][:7], []).append(rec)
            for month, recs in by_month.items():
                self._append(month, recs)
            done = [r["ticket"]["id"] for r in records]
            self._delete(store, records)
            moved += done
        return moved

    @guarded
    def _records(
        self, store: Store, ids: list[str], now: datetime, states: dict[str, SlaState | None]
    ) -> list[dict[str, Any]]:
        out = []
        for ticket in store.get_tickets(ids):
            if ticket.status.value not in ARCHIVABLE:
                continue  # reopened since the scan
            customer = store.get_customer(ticket.customer_id)
            out.append(
                {
                    "ticket": to_builtins(ticket),
                    "messages": to_builtins(store.ticket_messages(ticket.id)),
                    "customer": to_builtins(customer) if customer else None,
                    "sla": to_builtins(state) if (state := states[ticket.id]) else None,
                    "archived_at": now.isoformat(),
                }
            )
        return out

    def _append(self, month: str, records: list[dict[str, Any]]) -> None:
        path = self.root / f"{month}.jsonl.gz"
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with locked_month(path) as fh:
                fh.write(gzip.compress(data))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise TransientError(f"archive: cannot write {path}: {exc}") from None

    @guarded
    def _delete(self, store: Store, records: list[dict[str, Any]]) -> None:
        pipe = store.r.pipeline(transaction=True)
        for rec in records:
            t = rec["ticket"]
            tid = t["id"]
            dedupe = [
                f"{m['channel']}:{t['account']}:{m['external_id']}"
                for m in rec["messages"]
                if m["direction"] == "in" and m.get("external_id")
            ]
            # its SLA record and count, dedupe entries, thread keys (reads the ticket hash)
            store.script("forget")(
                keys=[],
                args=[store.prefix, tid, len(dedupe), *dedupe, *t.get("thread_keys", [])],
                client=pipe,
            )
            pipe.delete(store.key("ticket", tid), store.key("ticket", tid, "msgs"))
            for m in rec["messages"]:
                pipe.delete(store.key("msg", m["id"]))
            pipe.zrem(store.key("tickets"), tid)
            for status in ("new", "open", "pending_customer", "resolved", "closed"):
                pipe.zrem(store.key("status", status), tid)
            pipe.zrem(store.key("queue", t["queue"], "all"), tid)
            pipe.zrem(store.key("queue", t["queue"], "waiting"), tid)
            pipe.zrem(store.key("customer", t["customer_id"], "tickets"), tid)
            pipe.hdel(store.key("thread"), f"ticket:{tid}")  # [#OD-...] in a subject
            pipe.hset(store.key("archived"), tid, t["created_at"][:7])
        pipe.execute()

    # ------------------------------------------------------------ finding them again

    def records(self) -> Iterator[dict[str, Any]]:
        for path in self.months():
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield json.loads(line)

    def search(
        self,
        ticket_id: str | None = None,
        customer: str | None = None,
        text: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Archived tickets matching every given criterion (text: folded, Arabic-aware)."""
        needle = fold(text) if text else None
        found: dict[str, dict[str, Any]] = {}
        for rec in self.records():
            t = rec["ticket"]
            if ticket_id and t["id"] != ticket_id:
                continue
            if customer and customer not in _customer_keys(rec):
                continue
            if needle is not None:
                hay = " ".join(
                    [t.get("subject", ""), t.get("preview", "")]
                    + [m.get("text", "") for m in rec["messages"]]
                )
                if needle not in fold(hay):
                    continue
            found[t["id"]] = rec  # a later copy (re-run after a crash) wins
        return list(found.values())[:limit]

    def prune(self, retention_days: int, now: datetime | None = None) -> list[Path]:
        """Delete month files whose month ended more than `retention_days` ago."""
        now = now or datetime.now(UTC)
        removed = []
        for path in self.months():
            month = datetime.strptime(path.name[:7], "%Y-%m").replace(tzinfo=UTC)
            month_end = (month + timedelta(days=32)).replace(day=1)
            if now - month_end > timedelta(days=retention_days):
                path.unlink()
                removed.append(path)
        return removed


@contextmanager
def locked_month(path: Path) -> Iterator[BinaryIO]:
    """The month file open for appending under its exclusive lock. An erasure rewrites a
    month by renaming a new file over it while holding the lock: a writer that waited for
    the lock on the old file opens the path again rather than append to a file now gone."""
    while True:
        fh = open(path, "ab")  # noqa: SIM115 - closed below or by the caller's with
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            if os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        except BaseException:
            fh.close()
            raise
        fh.close()
    with fh:
        yield fh


def _customer_keys(rec: dict[str, Any]) -> set[str]:
    keys = {rec["ticket"].get("customer_id", "")}
    customer = rec.get("customer") or {}
    for ident in customer.get("identities", []):
        keys.add(ident.get("value", ""))
    return keys
