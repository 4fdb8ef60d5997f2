"""Erasure of personal data (the Saudi PDPL's right to erasure), for one person
(`erase_customer`) or for tickets past the retention period (omnidesk.db.retention).

What goes, everywhere it is held:
- PostgreSQL: the customer's name and identities; each of their tickets' subject, preview,
  commercial registration number and channel data (thread keys, addresses); each message's
  body, subject, search text, raw payload reference, attachment names and channel file refs,
  and the customer's author name; the free-text fields of events (`PERSONAL_EVENT_FIELDS`).
- Redis, for whatever is still hot: the same fields of the customer, ticket and message
  hashes, the identity hash entries and ``:ids`` set, and the thread keys that would route a
  message to the ticket.
- The raw archive (omnidesk.archive): the payload files the messages name (raw_ref) and
  their attachments' content-addressed files, unless another person's message names the
  same bytes; and the monthly ticket-archive files (omnidesk.archiving), whose records of
  the tickets lose the same fields (a month holding one is rewritten).

What stays, so the statistics hold: ticket rows with queue, status, priority, channel,
language, segment, region, dates and agent; customer rows with id, segment, region and tags;
events with their type, queue, times, actor and scores; agents' names on their own replies;
the audit trail (it holds ids and counts only). The customer and ticket ids are pseudonyms
from then on. Erasing twice changes nothing more; `erased_at` keeps the first time. Once a
ticket is erased, schema 0003's triggers keep the records writer from bringing its text back
(a snapshot read before the erasure, an event still in the stream).

Not reached: entries still in the Redis events stream (trimmed once the writer has written
them). Reports keep nothing in Redis (older versions' rollups, which listed CSAT comments,
are deleted at daemon start-up: omnidesk.reports.legacy).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from pathlib import Path
from typing import Any

import psycopg
from redis.typing import EncodableT, FieldT

from omnidesk.archive import Archive
from omnidesk.archiving import TicketArchive, locked_month
from omnidesk.db.customers import audit, merged_group, resolve
from omnidesk.errors import TransientError
from omnidesk.store import Store, guarded

# event fields that may carry what a person wrote or who they are (a CSAT comment, an agent's
# reason that quotes the customer, a delivery error naming an address)
PERSONAL_EVENT_FIELDS = ("comment", "reason", "text", "subject", "name", "email", "phone",
                         "delivery", "error", "address", "identity")  # fmt: skip
TICKET_FIELDS_BLANKED = ("subject", "preview")
TICKET_FIELDS_DROPPED = ("csat_comment", "cr_number")
BATCH = 500  # tickets per Redis round trip


def _scrub_attachments(items: Any) -> list[dict[str, Any]]:
    """Attachments without their file names and channel refs; type and size stay."""
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            out.append({**item, "filename": "", "ref": ""})
    return out


def erase_tickets(
    conn: psycopg.Connection[Any],
    ticket_ids: list[str],
    store: Store | None = None,
    state_dir: str | Path | None = None,
) -> dict[str, int]:
    """Remove the personal data of these tickets and their messages (PostgreSQL, Redis, raw
    archive), keeping the statistics; marks the tickets erased. Returns counts."""
    if not ticket_ids:
        return {"tickets": 0, "messages": 0, "events": 0, "files": 0, "archived_records": 0,
                "redis_keys": 0}  # fmt: skip
    rows = conn.execute(
        "SELECT id, raw_ref, attachments FROM messages WHERE ticket_id = ANY(%s)",
        (ticket_ids,),
    ).fetchall()
    digests = {str(r[1]) for r in rows if r[1]}
    for _, _, attachments in rows:
        for item in attachments if isinstance(attachments, list) else []:
            if isinstance(item, dict) and item.get("sha256"):
                digests.add(str(item["sha256"]))
    shared = _shared_digests(conn, digests, ticket_ids)
    cur = conn.execute(
        """
        UPDATE messages SET body = '', subject = '', search = NULL, raw_ref = NULL,
               author = CASE WHEN direction = 'in' THEN '' ELSE author END,
               attachments = coalesce((
                   SELECT jsonb_agg(a || '{"filename": "", "ref": ""}'::jsonb)
                   FROM jsonb_array_elements(CASE jsonb_typeof(attachments)
                        WHEN 'array' THEN attachments ELSE '[]'::jsonb END) a
                   WHERE jsonb_typeof(a) = 'object'), '[]'::jsonb)
        WHERE ticket_id = ANY(%s)
        """,
        (ticket_ids,),
    )
    messages = cur.rowcount
    tickets = conn.execute(
        "UPDATE tickets SET subject = '', preview = '', cr_number = NULL, data = '{}',"
        " erased_at = coalesce(erased_at, now()) WHERE id = ANY(%s)",
        (ticket_ids,),
    ).rowcount
    events = conn.execute(
        "UPDATE events SET data = data - %s::text[] WHERE ticket_id = ANY(%s) AND data ?| %s",
        (list(PERSONAL_EVENT_FIELDS), ticket_ids, list(PERSONAL_EVENT_FIELDS)),
    ).rowcount
    redis_keys = _hot_tickets(store, ticket_ids) if store is not None else 0
    files = archived = 0
    if state_dir is not None:
        files = _delete_files(state_dir, digests - shared)
        archived = scrub_ticket_archive(state_dir, ticket_ids)
    return {
        "tickets": tickets,
        "messages": messages,
        "events": events,
        "files": files,
        "archived_records": archived,
        "redis_keys": redis_keys,
    }


def _shared_digests(
    conn: psycopg.Connection[Any], digests: set[str], ticket_ids: list[str]
) -> set[str]:
    """The digests some other ticket's message still names (the same bytes sent by two
    people): their files stay."""
    if not digests:
        return set()
    rows = conn.execute(
        """
        SELECT DISTINCT d FROM unnest(%s::text[]) d
        WHERE EXISTS (SELECT 1 FROM messages m WHERE m.raw_ref = d
                      AND NOT m.ticket_id = ANY(%s))
           OR EXISTS (SELECT 1 FROM messages m WHERE NOT m.ticket_id = ANY(%s)
                      AND m.attachments @> jsonb_build_array(jsonb_build_object('sha256', d)))
        """,
        (sorted(digests), ticket_ids, ticket_ids),
    ).fetchall()
    return {str(r[0]) for r in rows}


def _delete_files(state_dir: str | Path, digests: set[str]) -> int:
    archive = Archive(state_dir)
    removed = 0
    for digest in digests:
        try:
            places = archive.paths(digest)
        except ValueError:  # not a digest we wrote
            continue
        for path in places:  # this layout's and an older version's
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:  # gone already
                continue
    return removed


@guarded
def _hot_tickets(store: Store, ticket_ids: list[str]) -> int:
    """Blank the personal fields of the tickets and messages Redis still holds; returns how
    many hashes changed."""
    r, keys = store.r, store.keys
    changed = 0
    for start in range(0, len(ticket_ids), BATCH):
        chunk = ticket_ids[start : start + BATCH]
        read = r.pipeline(transaction=False)
        for tid in chunk:
            read.hmget(keys.ticket(tid), "id", "thread_keys")
            read.lrange(keys.ticket_msgs(tid), 0, -1)
        replies = read.execute()
        heads = list(zip(chunk, replies[::2], replies[1::2], strict=True))
        mids = [m for _, _, ms in heads for m in ms]
        read = r.pipeline(transaction=False)
        for mid in mids:
            read.hmget(keys.msg(mid), "direction", "attachments")
        msg_fields = read.execute() if mids else []
        write = r.pipeline(transaction=True)
        for tid, (exists, thread_keys), _ in heads:
            if exists is None:
                continue
            changed += 1
            tkey = keys.ticket(tid)
            write.hset(tkey, mapping={f: "" for f in TICKET_FIELDS_BLANKED})
            write.hset(tkey, mapping={"meta": "{}", "thread_keys": "[]", "contacts": "[]"})
            write.hdel(tkey, *TICKET_FIELDS_DROPPED)
            for tk in _json_list(thread_keys):
                if isinstance(tk, str) and r.hget(keys.thread(), tk) == tid:
                    write.hdel(keys.thread(), tk)
        for mid, (direction, attachments) in zip(mids, msg_fields, strict=True):
            if direction is None:
                continue
            changed += 1
            mkey = keys.msg(mid)
            fields: dict[FieldT, EncodableT] = {
                "text": "",
                "subject": "",
                "attachments": json.dumps(
                    _scrub_attachments(_json_list(attachments)), ensure_ascii=False
                ),
            }
            if direction == "in":
                fields["author"] = ""
            write.hset(mkey, mapping=fields)
            write.hdel(mkey, "raw_ref")
        write.execute()
    return changed


def scrub_ticket_archive(state_dir: str | Path, ticket_ids: list[str]) -> int:
    """Blank the same personal fields in the monthly ticket-archive files (omnidesk.archiving)
    for these tickets: their record's ticket, messages and customer copy. A month holding one
    of them is rewritten whole to a new file renamed over it, under the month's lock (its
    appender opens the path again after waiting). Returns how many records changed."""
    wanted = set(ticket_ids)
    changed = 0
    for path in TicketArchive(state_dir).months():
        with locked_month(path):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                lines = fh.readlines()
            out, hits = [], 0
            for line in lines:
                rec = json.loads(line) if line.strip() else None
                if rec is not None and rec.get("ticket", {}).get("id") in wanted:
                    line = json.dumps(_scrub_record(rec), ensure_ascii=False) + "\n"
                    hits += 1
                out.append(line)
            if not hits:
                continue
            tmp = path.with_name(f".{path.name}.erasing-{os.getpid()}")
            try:
                with open(tmp, "wb") as fh_out:
                    fh_out.write(gzip.compress("".join(out).encode()))
                    fh_out.flush()
                    os.fsync(fh_out.fileno())
                os.replace(tmp, path)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise TransientError(f"archive: cannot rewrite {path}: {exc}") from None
            changed += hits
    return changed


def _scrub_record(rec: dict[str, Any]) -> dict[str, Any]:
    ticket = rec.get("ticket") or {}
    ticket.update({"subject": "", "preview": "", "meta": {}, "thread_keys": [], "contacts": []})
    ticket.pop("csat_comment", None)
    for m in rec.get("messages") or []:
        m.update({"text": "", "subject": "", "raw_ref": None})
        m["attachments"] = _scrub_attachments(m.get("attachments"))
        if m.get("direction") == "in":
            m["author"] = ""
    if rec.get("customer"):
        rec["customer"].update({"name": "", "identities": []})
    return rec


def _json_list(text: str | None) -> list[Any]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


# ---------------------------------------------------------------- customers


def erase_people(
    conn: psycopg.Connection[Any], customer_ids: list[str], store: Store | None
) -> dict[str, int]:
    """Remove the customers' names and identities (PostgreSQL and Redis); marks them erased.
    Their tickets are `erase_tickets`'s."""
    identities = conn.execute(
        "DELETE FROM identities WHERE customer_id = ANY(%s)", (customer_ids,)
    ).rowcount
    # what a merge moved names identities: keep the counts, not the values
    conn.execute(
        "UPDATE customer_merges SET moved = jsonb_set(moved, '{identities}', '[]')"
        " WHERE source_id = ANY(%s) OR target_id = ANY(%s)",
        (customer_ids, customer_ids),
    )
    conn.execute(
        "UPDATE customers SET name = '', updated_at = now(),"
        " erased_at = coalesce(erased_at, now()) WHERE id = ANY(%s)",
        (customer_ids,),
    )
    redis_keys = _hot_people(store, customer_ids) if store is not None else 0
    return {"customers": len(customer_ids), "identities": identities, "redis_keys": redis_keys}


@guarded
def _hot_people(store: Store, customer_ids: list[str]) -> int:
    r, keys = store.r, store.keys
    read = r.pipeline(transaction=False)
    for cid in customer_ids:
        read.smembers(keys.customer_ids(cid))
        read.exists(keys.customer(cid))
    replies = read.execute()
    write = r.pipeline(transaction=True)
    changed = 0
    for cid, ids, exists in zip(customer_ids, replies[::2], replies[1::2], strict=True):
        owners = r.hmget(keys.identity(), sorted(ids)) if ids else []
        for ik, owner in zip(sorted(ids), owners, strict=True):
            if owner == cid:
                write.hdel(keys.identity(), ik)
                changed += 1
        write.delete(keys.customer_ids(cid))
        if exists:
            write.hset(keys.customer(cid), "name", "")
            changed += 1
    write.execute()
    return changed


def erase_customer(
    conn: psycopg.Connection[Any],
    customer_id: str,
    actor: str,
    store: Store | None = None,
    state_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Erase one person: the customer (an id or identity; a merged one means the customer
    it was merged into), every customer merged into it, and all their tickets. Audited."""
    cid, via = resolve(conn, customer_id)
    group = merged_group(conn, cid)
    conn.execute("SELECT 1 FROM customers WHERE id = ANY(%s) FOR UPDATE", (group,))
    tickets = [
        str(r[0])
        for r in conn.execute(
            "SELECT id FROM tickets WHERE customer_id = ANY(%s) ORDER BY id", (group,)
        ).fetchall()
    ]
    if store is not None:  # hot tickets PostgreSQL has not received yet
        pipe = store.r.pipeline(transaction=False)
        for c in group:
            pipe.zrange(store.keys.customer_tickets(c), 0, -1)
        for hot in pipe.execute():
            tickets += [t for t in hot if t not in tickets]
    done = erase_tickets(conn, tickets, store, state_dir)
    people = erase_people(conn, group, store)
    summary = {
        "customer": cid,
        "customers": group,
        "tickets": len(tickets),
        "messages": done["messages"],
        "events": done["events"],
        "identities": people["identities"],
        "files": done["files"],
        "archived_records": done["archived_records"],
        "redis_keys": done["redis_keys"] + people["redis_keys"],
    }
    if via is not None:
        summary["resolved_from"] = via
    audit(conn, actor, "erase", cid, {k: v for k, v in summary.items() if k != "customer"})
    return summary
