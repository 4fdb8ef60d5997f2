-- The system of record. Redis's scripts keep the same invariants on hot tickets; these
-- constraints are the backstop once a ticket has left Redis.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE customers (
    id          text PRIMARY KEY,                  -- C-NNNNNNNN, as intake gave it
    name        text NOT NULL DEFAULT '',
    segment     text NOT NULL DEFAULT 'unknown',
    region      text,
    tags        text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    merged_into text REFERENCES customers (id),    -- set while merged into another customer
    erased_at   timestamptz                        -- personal data removed (PDPL)
);
CREATE INDEX customers_created ON customers (created_at);
CREATE INDEX customers_tags ON customers USING gin (tags);

-- one identity per (kind, value): an e-mail or a phone belongs to one customer
CREATE TABLE identities (
    kind        text NOT NULL,                     -- email, phone, telegram, twitter, ...
    value       text NOT NULL,
    customer_id text NOT NULL REFERENCES customers (id),
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_customer ON identities (customer_id);

CREATE TABLE tickets (
    id                text PRIMARY KEY,            -- OD-<year>-<NNNNNN>
    customer_id       text NOT NULL,
    channel           text NOT NULL,
    account           text NOT NULL DEFAULT '',
    queue             text NOT NULL,
    status            text NOT NULL,
    priority          text NOT NULL DEFAULT 'normal',
    sla_policy        text NOT NULL DEFAULT '',
    rule              text,
    assignee          text,
    subject           text NOT NULL DEFAULT '',
    preview           text NOT NULL DEFAULT '',
    language          text NOT NULL DEFAULT 'unknown',
    segment           text NOT NULL DEFAULT 'unknown',
    region            text,
    tags              text[] NOT NULL DEFAULT '{}',
    cr_number         text,                        -- commercial registration, when given
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    first_response_at timestamptz,
    resolved_at       timestamptz,
    closed_at         timestamptz,
    due_at            timestamptz,
    hot               boolean NOT NULL DEFAULT true,  -- still held in Redis
    -- the stream position of the snapshot written last, as ms * 10^6 + seq: an older
    -- snapshot never overwrites a newer one when several writers run
    synced_pos        bigint NOT NULL DEFAULT 0,
    data              jsonb NOT NULL DEFAULT '{}'  -- thread keys, channel meta
);
CREATE INDEX tickets_queue_status ON tickets (queue, status, created_at DESC);
CREATE INDEX tickets_queue_created ON tickets (queue, created_at DESC);
CREATE INDEX tickets_status_created ON tickets (status, created_at DESC);
CREATE INDEX tickets_customer ON tickets (customer_id, created_at DESC);
CREATE INDEX tickets_created ON tickets (created_at DESC);
CREATE INDEX tickets_channel ON tickets (channel, created_at DESC);
CREATE INDEX tickets_tags ON tickets USING gin (tags);
CREATE INDEX tickets_cr_number ON tickets (cr_number) WHERE cr_number IS NOT NULL;
-- resolved or closed tickets still in Redis: what the eviction pass reads
CREATE INDEX tickets_hot_done ON tickets (updated_at)
    WHERE hot AND status IN ('resolved', 'closed');

CREATE TABLE messages (
    id          text PRIMARY KEY,
    ticket_id   text NOT NULL REFERENCES tickets (id),
    direction   text NOT NULL,                     -- in, out, note
    channel     text NOT NULL,
    account     text NOT NULL DEFAULT '',
    external_id text,                              -- the channel's id of a customer message
    created_at  timestamptz NOT NULL,
    sent_at     timestamptz,
    author      text NOT NULL DEFAULT '',
    subject     text NOT NULL DEFAULT '',
    body        text NOT NULL DEFAULT '',
    delivery    text,
    raw_ref     text,                              -- sha256 of the raw payload in the archive
    -- metadata of each attachment; its bytes live content-addressed in the raw archive
    attachments jsonb NOT NULL DEFAULT '[]',
    search      tsvector,                          -- folded text (omnidesk.db.searchtext)
    synced_pos  bigint NOT NULL DEFAULT 0,
    -- one message per (channel, account, external_id), as Redis's dedupe key
    UNIQUE (channel, account, external_id)
);
CREATE INDEX messages_ticket ON messages (ticket_id, created_at);

-- who did what, when: append-only, one partition per month (created by the writer)
CREATE TABLE events (
    ts        timestamptz NOT NULL,               -- from the stream id: when it was added
    stream_id text NOT NULL,                      -- <ms>-<seq> in the Redis events stream
    type      text NOT NULL,
    ticket_id text,
    queue     text,
    channel   text,
    actor     text,
    data      jsonb NOT NULL DEFAULT '{}',         -- the event's other fields
    PRIMARY KEY (stream_id, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_ts_type ON events (ts, type);
CREATE INDEX events_ticket ON events (ticket_id, ts);

-- agents' and operators' actions on records (merge, erase, export, tag, ...)
CREATE TABLE audit (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    subject text NOT NULL,                        -- a customer or ticket id
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_subject ON audit (subject, at);

-- a merge of two customers, with what moved, so it can be undone
CREATE TABLE customer_merges (
    id        bigserial PRIMARY KEY,
    source_id text NOT NULL REFERENCES customers (id),
    target_id text NOT NULL REFERENCES customers (id),
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    moved     jsonb NOT NULL,                     -- {"identities": [...], "tickets": [...]}
    undone_at timestamptz
);
