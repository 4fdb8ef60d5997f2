-- Calls from the communication centre's PBX (omnidesk/agents/cti.py): one row per call,
-- moved along by its events; the call report (omnidesk/reports/calls.py) reads it.
CREATE TABLE calls (
    pbx          text NOT NULL,
    call_id      text NOT NULL,                   -- the PBX's id of the call (Asterisk's Linkedid)
    branch       text NOT NULL DEFAULT '',        -- the PBX's branch in the config
    caller       text NOT NULL DEFAULT '',        -- E.164 when it parses, else as the PBX sent it
    customer_id  text,                            -- the customer the number found, if any
    state        text NOT NULL,                   -- ringing, answered, completed, missed, voicemail
    started_at   timestamptz NOT NULL,
    answered_at  timestamptz,
    ended_at     timestamptz,
    duration_s   integer,                         -- talk time, from answer to hang-up
    agent        text,                            -- the agent who answered
    extension    text,
    recording    text,                            -- the voicemail's recording reference
    ticket_id    text,                            -- the ticket it opened or was attached to
    disposition  text,                            -- ticket, attach, logged, callback
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pbx, call_id)
);
CREATE INDEX calls_started ON calls (started_at);
CREATE INDEX calls_caller ON calls (caller, started_at);

-- Every accepted PBX event once: a resent event (the PBX retrying after a lost answer)
-- changes nothing.
CREATE TABLE call_events (
    pbx        text NOT NULL,
    event_id   text NOT NULL,
    call_id    text NOT NULL,
    type       text NOT NULL,
    at         timestamptz NOT NULL,
    data       jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (pbx, event_id)
);
