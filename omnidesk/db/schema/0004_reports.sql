-- Reports over any period and ticket lists, read from the system of record.

-- Monthly partitions of `events` (events_yYYYYmMM, months in UTC) for [from_ts, to_ts].
-- A month whose rows already sit in events_default gets them moved into its new partition
-- first, so calling this late (after the writer fell back to the default) is safe. The
-- writer calls it before writing a batch; benches and tests call it before seeding.
CREATE OR REPLACE FUNCTION ensure_event_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month timestamptz := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    next_month timestamptz;
    name text;
    created integer := 0;
BEGIN
    WHILE month <= to_ts LOOP
        next_month := (date_trunc('month', month AT TIME ZONE 'UTC') + interval '1 month')
                      AT TIME ZONE 'UTC';
        name := 'events_y' || to_char(month AT TIME ZONE 'UTC', 'YYYY') || 'm'
                || to_char(month AT TIME ZONE 'UTC', 'MM');
        IF to_regclass(name) IS NULL THEN
            -- one creator at a time: two writers racing on a new month do not collide
            PERFORM pg_advisory_xact_lock(hashtext('ensure_event_partitions'));
            IF to_regclass(name) IS NULL THEN
                EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS)', name);
                EXECUTE format(
                    'WITH moved AS (DELETE FROM events_default WHERE ts >= %L AND ts < %L '
                    'RETURNING *) INSERT INTO %I SELECT * FROM moved', month, next_month, name);
                EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               name, month, next_month);
                created := created + 1;
            END IF;
        END IF;
        month := next_month;
    END LOOP;
    RETURN created;
END $$;

-- one contribution of an event to the report's counters (omnidesk/db/reports.py)
CREATE TYPE report_item AS (metric text, n bigint, queue text, agent text, item text);

-- the openings of a period, per customer, for repeat contacts (a sixth of the rows)
CREATE INDEX events_opened ON events (ts) WHERE type = 'ticket_opened';
-- tickets changed since a moment: the ones whose history a report must read from before
-- its period
CREATE INDEX tickets_updated ON tickets (updated_at);
-- keyset pages of ticket lists: (created_at, id) is the cursor, newest first
CREATE INDEX tickets_queue_page ON tickets (queue, created_at DESC, id DESC);
CREATE INDEX tickets_queue_status_page ON tickets (queue, status, created_at DESC, id DESC);
CREATE INDEX tickets_page ON tickets (created_at DESC, id DESC);
