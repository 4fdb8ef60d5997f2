-- When the answering agent's screen-pop went out (omnidesk/agents/cti_desk.py): set before
-- the pop is written to Redis and cleared again if that fails, so a resent `answered` event
-- pops a call whose first pop was lost, and pops it once.
ALTER TABLE calls ADD COLUMN popped_at timestamptz;
