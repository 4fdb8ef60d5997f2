-- Whose screen-pop went out for a call, and when (omnidesk/agents/cti_desk.py): claimed for
-- the answering agent before the pop is written to Redis and given back if that fails, so a
-- resent `answered` event pops a call whose pop was lost, once; a call answered again by
-- another agent (a transfer) pops for that agent too.
ALTER TABLE calls ADD COLUMN popped_at timestamptz;
ALTER TABLE calls ADD COLUMN popped_for text;
