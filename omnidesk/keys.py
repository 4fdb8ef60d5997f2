"""Every Redis key family of Omnidesk: its name, type, owner and lifetime, in one place.

Every key lives under one prefix (`service.key_prefix`, default ``od``), so several
deployments or test runs share one Redis. `Keys(prefix)` builds the names; `FAMILIES` says
what each one is. Python builds names here only (`Store.key` joins raw names for tests
and tools that look at Redis as it is; tests/test_keys.py checks that no product module
calls it). A Lua script gets the prefix as ``KEYS[1]`` and joins the same names from it
(Redis scripts cannot import this module), so the scripts and this file are the two places
that spell a name: tests/test_keys.py checks that every family a script builds is listed
here. Keys are joined inside the scripts, so this targets a
single Redis, not Redis Cluster.

Redis holds hot state only: a done ticket, with every key that names it or its messages,
leaves once PostgreSQL holds it (omnidesk.db.evict), and customers with no ticket left go
with it. What is left grows with open work, not with history.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeyFamily:
    """One kind of key: its name below the prefix, Redis type, owning module, lifetime."""

    pattern: str
    type: str
    owner: str
    lifetime: str


EVICTED = "until the ticket is evicted (omnidesk.db.evict, lua/evict.lua)"

FAMILIES: tuple[KeyFamily, ...] = (
    # --- tickets and messages (omnidesk.store, lua/intake.lua)
    KeyFamily("ticket:<id>", "hash", "omnidesk.store", EVICTED),
    KeyFamily("ticket:<id>:msgs", "list", "omnidesk.store", EVICTED),
    KeyFamily("ticket:<id>:posts", "list", "omnidesk.intake", EVICTED),
    KeyFamily("msg:<mid>", "hash", "omnidesk.store", EVICTED),
    KeyFamily("tickets", "zset", "omnidesk.store", "permanent; members leave when evicted"),
    KeyFamily("status:<status>", "zset", "omnidesk.store", "permanent; members evicted"),
    KeyFamily("queue:<q>:all", "zset", "omnidesk.store", "permanent; members evicted"),
    KeyFamily("queue:<q>:waiting", "zset", "omnidesk.store", "permanent; open unassigned only"),
    KeyFamily("queues", "set", "omnidesk.store", "permanent"),
    KeyFamily("thread", "hash", "omnidesk.store", "permanent; a ticket's entries evicted"),
    KeyFamily("seen", "hash", "omnidesk.intake", "permanent; a ticket's entries evicted"),
    KeyFamily("seen:auto:<dedupe key>", "string", "omnidesk.intake",
              "service.dedupe_window_days (TTL)"),
    KeyFamily("seq:ticket:<year>", "string", "lua/intake.lua", "permanent"),
    KeyFamily("seq:customer", "string", "lua/intake.lua", "permanent"),
    KeyFamily("events", "stream", "omnidesk.store (omnidesk.events)",
              "trimmed once PostgreSQL holds the entries (omnidesk.db.writer)"),
    KeyFamily("stats", "hash", "omnidesk.store", "permanent (counters)"),
    KeyFamily("sent:<channel>:<external id>", "string", "omnidesk.store",
              "store.SENT_ID_TTL_S (TTL): a sent message's channel id, for its statuses"),
    KeyFamily("early:<channel>:<external id>", "list", "omnidesk.store",
              "store.EARLY_STATUS_TTL_S (TTL): statuses that came before their send was noted"),
    # --- customers (omnidesk.store, omnidesk.known, omnidesk.customer_evict)
    KeyFamily("customer:<cid>", "hash", "omnidesk.store",
              "until it has no ticket here and PostgreSQL has it (omnidesk.customer_evict)"),
    KeyFamily("customer:<cid>:ids", "set", "omnidesk.store", "with the customer"),
    KeyFamily("customer:<cid>:tickets", "zset", "omnidesk.store", "with the customer"),
    KeyFamily("customers", "zset", "omnidesk.store", "permanent; members evicted"),
    KeyFamily("identity", "hash", "omnidesk.store", "permanent; a customer's entries evicted"),
    KeyFamily("evict:customers", "set", "omnidesk.db.evict", "until the next eviction pass"),
    # --- agents (omnidesk.agents)
    KeyFamily("agent:<id>:open", "zset", "omnidesk.agents.assign", "while the agent holds work"),
    KeyFamily("presence:<id>", "string", "omnidesk.agents.assign", "presence_ttl_s (TTL)"),
    KeyFamily("rr:<queue>", "string", "lua/push.lua", "permanent (round-robin cursor)"),
    KeyFamily("auth:tokens", "hash", "omnidesk.agents.tokens", "until revoked"),
    KeyFamily("auth:agent:<id>", "set", "omnidesk.agents.tokens", "until revoked"),
    KeyFamily("auth:cookie:<sha256>", "string", "omnidesk.agents.tokens", "session TTL"),
    KeyFamily("csat:<token>", "hash", "omnidesk.agents.csat", "30 days (TTL)"),
    # --- intake side channels
    KeyFamily("receipts:sender:<cid>", "zset", "omnidesk.receipts", "one hour (TTL)"),
    KeyFamily("status_req:<dedupe key>", "string", "omnidesk.status_replies",
              "the dedupe window (TTL)"),
    KeyFamily("webref:<reference>", "string", "omnidesk.webform", "reference_ttl_s (TTL)"),
    KeyFamily("rl:<scope>:<digest>", "string", "omnidesk.ratelimit",
              "its window, from the first hit (TTL)"),
    KeyFamily("quarantine", "zset", "omnidesk.quarantine", "until dropped"),
    KeyFamily("quarantine:<id>", "hash", "omnidesk.quarantine", "until dropped"),
    KeyFamily("quarantine:bytes", "string", "omnidesk.quarantine", "permanent (a total)"),
    # --- records, archive, reports
    KeyFamily("records:failed", "hash", "omnidesk.db.writer", "until an operator retries"),
    KeyFamily("archive:run:<slot>", "string", "omnidesk.archive_job", "a lease (TTL)"),
    KeyFamily("archive:runs", "hash", "omnidesk.archive_job", "permanent (counters)"),
    KeyFamily("report:<name>:<label>", "string", "omnidesk.reports.schedule", "a run (TTL)"),
    # --- SLA clocks (omnidesk.sla, lua/sla_*.lua)
    KeyFamily("sla:b:<bucket>", "hash", "omnidesk.sla.records", EVICTED),
    KeyFamily("sla:due", "zset", "omnidesk.sla.records", "permanent; buckets leave when empty"),
    KeyFamily("sla:dirty", "set", "omnidesk.sla.records", "while a bucket is leased"),
    KeyFamily("sla:overdue", "zset", "omnidesk.sla.records", "while a ticket is past a deadline"),
    KeyFamily("sla:n", "hash", "omnidesk.sla.records", "permanent (counts)"),
    # --- directory login (omnidesk.agents.directory_roster, omnidesk.agents.sessions)
    KeyFamily("directory:agents", "hash", "omnidesk.agents.directory_roster",
              "an entry until the sync drops it; honoured until its `until` (3 syncs)"),
    KeyFamily("auth:session:<sha256>", "hash", "omnidesk.agents.sessions",
              "directory.session_ttl_s idle (TTL), at most session_max_s"),
    KeyFamily("auth:sessions:<id>", "set", "omnidesk.agents.sessions",
              "directory.session_max_s (TTL); cleared when the agent loses access"),
    KeyFamily("auth:fail:<sha256>", "string", "omnidesk.agents.sessions",
              "directory.lockout_window_s (TTL) from the first failure"),
)  # fmt: skip


class Keys:
    """The key names under one prefix; one method per family in `FAMILIES`."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def all_pattern(self) -> str:
        """A SCAN match for every key under the prefix (`Store.delete_all`)."""
        return f"{self.prefix}:*"

    # tickets and messages
    def ticket(self, tid: str) -> str:
        return self._k("ticket", tid)

    def ticket_msgs(self, tid: str) -> str:
        return self._k("ticket", tid, "msgs")

    def ticket_posts(self, tid: str) -> str:
        return self._k("ticket", tid, "posts")

    def msg(self, mid: str) -> str:
        return self._k("msg", mid)

    def tickets(self) -> str:
        return self._k("tickets")

    def status(self, status: str) -> str:
        return self._k("status", status)

    def queue_all(self, queue: str) -> str:
        return self._k("queue", queue, "all")

    def queue_waiting(self, queue: str) -> str:
        return self._k("queue", queue, "waiting")

    def queues(self) -> str:
        return self._k("queues")

    def thread(self) -> str:
        return self._k("thread")

    def seen(self) -> str:
        return self._k("seen")

    def seen_auto(self, dedupe_key: str) -> str:
        return self._k("seen", "auto", dedupe_key)

    def events(self) -> str:
        return self._k("events")

    def stats(self) -> str:
        return self._k("stats")

    def sent(self, channel: str, external_id: str) -> str:
        return self._k("sent", channel, external_id)

    def early(self, channel: str, external_id: str) -> str:
        return self._k("early", channel, external_id)

    # customers
    def customer(self, cid: str) -> str:
        return self._k("customer", cid)

    def customer_ids(self, cid: str) -> str:
        return self._k("customer", cid, "ids")

    def customer_tickets(self, cid: str) -> str:
        return self._k("customer", cid, "tickets")

    def customers(self) -> str:
        return self._k("customers")

    def identity(self) -> str:
        return self._k("identity")

    def evict_customers(self) -> str:
        return self._k("evict", "customers")

    # agents
    def agent_open(self, agent_id: str) -> str:
        return self._k("agent", agent_id, "open")

    def presence(self, agent_id: str) -> str:
        return self._k("presence", agent_id)

    def auth_tokens(self) -> str:
        return self._k("auth", "tokens")

    def auth_agent(self, agent_id: str) -> str:
        return self._k("auth", "agent", agent_id)

    def auth_cookie(self, digest: str) -> str:
        return self._k("auth", "cookie", digest)

    def csat(self, token: str) -> str:
        return self._k("csat", token)

    # intake side channels
    def receipts_sender(self, cid: str) -> str:
        return self._k("receipts", "sender", cid)

    def status_req(self, dedupe_key: str) -> str:
        return self._k("status_req", dedupe_key)

    def webref(self, reference: str) -> str:
        return self._k("webref", reference)

    def ratelimit(self, scope: str, digest: str) -> str:
        return self._k("rl", scope, digest)

    def quarantine(self) -> str:
        return self._k("quarantine")

    def quarantine_item(self, qid: str) -> str:
        return self._k("quarantine", qid)

    def quarantine_bytes(self) -> str:
        return self._k("quarantine", "bytes")

    # records, archive, reports
    def records_failed(self) -> str:
        return self._k("records", "failed")

    def archive_run(self, slot: int) -> str:
        return self._k("archive", "run", str(slot))

    def archive_runs(self) -> str:
        return self._k("archive", "runs")

    def report(self, name: str, label: str) -> str:
        return self._k("report", name, label)

    # SLA clocks (omnidesk.sla)
    def sla_bucket(self, bucket: str) -> str:
        return self._k("sla", "b", bucket)

    def sla_due(self) -> str:
        return self._k("sla", "due")

    def sla_dirty(self) -> str:
        return self._k("sla", "dirty")

    def sla_overdue(self) -> str:
        return self._k("sla", "overdue")

    def sla_counts(self) -> str:
        return self._k("sla", "n")

    # directory login (omnidesk.agents.directory_roster, omnidesk.agents.sessions)
    def directory_agents(self) -> str:
        return self._k("directory", "agents")

    def auth_session(self, digest: str) -> str:
        return self._k("auth", "session", digest)

    def auth_sessions(self, agent_id: str) -> str:
        return self._k("auth", "sessions", agent_id)

    def auth_fail(self, digest: str) -> str:
        return self._k("auth", "fail", digest)
