-- Daily (and monthly) report counters folded from the events (omnidesk/db/report_days.py),
-- so a report over a year sums a few hundred thousand stored counters instead of
-- refolding ten million events.

-- One row per counter: span 'd' (the local day `day`) or 'm' (the month starting `day`,
-- the sum of its days); g says which breakdown the row is of: 'cube' (every dimension,
-- what filtered reports read), 'total' (no dimension) or one dimension's name (that
-- dimension set, the others ''), which unfiltered reports read.
CREATE TABLE report_days (
    span char(1) NOT NULL,
    day date NOT NULL,
    g text NOT NULL,
    metric text NOT NULL,
    dq text NOT NULL DEFAULT '',
    dch text NOT NULL DEFAULT '',
    dseg text NOT NULL DEFAULT '',
    dreg text NOT NULL DEFAULT '',
    dag text NOT NULL DEFAULT '',
    n bigint NOT NULL
);
CREATE INDEX report_days_at ON report_days (span, day, g, metric);
CREATE INDEX report_days_queue ON report_days (span, dq, day) WHERE g = 'cube';

-- The listed items (breached tickets, default-queue tickets, CSAT comments) of each day,
-- each as the report query makes it: a text that sorts in stream order.
CREATE TABLE report_day_lists (
    day date NOT NULL,
    metric text NOT NULL,
    dq text NOT NULL,
    dch text NOT NULL,
    dseg text NOT NULL,
    dreg text NOT NULL,
    dag text NOT NULL,
    item text NOT NULL
);
CREATE INDEX report_day_lists_at ON report_day_lists (metric, day, item);
CREATE INDEX report_day_lists_day ON report_day_lists (day);

-- A day whose rows are complete: folded after the records held every event up to its end.
-- `config` is the fingerprint of what the counters depend on (time zone, queue regions,
-- SLA targets, calendars): rows folded under another config are not used.
CREATE TABLE report_days_done (
    day date PRIMARY KEY,
    day_end timestamptz NOT NULL,
    config text NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    events_upto timestamptz,  -- the newest event the records held when it was folded
    events_n bigint NOT NULL, -- the day's events then: a fold that raced a late insert
                              -- is caught by a later round's recount ...
    recounted boolean NOT NULL DEFAULT false  -- ... done once per fold
);
CREATE INDEX report_days_done_end ON report_days_done (day_end);
CREATE TABLE report_months_done (
    month date PRIMARY KEY,
    month_end timestamptz NOT NULL,
    config text NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now()
);

-- An event written late (older than a folded day's end: a replayed or delayed stream
-- entry) makes that day, and every later one, and their months, be folded again.
CREATE FUNCTION report_days_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    oldest timestamptz;
BEGIN
    SELECT min(ts) INTO oldest FROM new_events;
    IF oldest IS NOT NULL THEN
        DELETE FROM report_days_done WHERE day_end > oldest;
        DELETE FROM report_months_done WHERE month_end > oldest;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_report_days_dirty AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT
    EXECUTE FUNCTION report_days_dirty();
