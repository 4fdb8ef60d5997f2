-- Write one ticket's SLA record if nobody changed it since it was read (compare-and-set on
-- the version the record starts with, "<v>|<wake>|<packed state>"), then its bucket's
-- wakeup, the overdue index and the per-queue counts.
-- KEYS[1]: the key prefix. ARGV: ticket_id, expected_v, body ("<wake>|<packed state>"),
-- score (the wake in ms, "" = nothing to wake up for), standing ("" = every clock stopped),
-- overdue (the passed deadline in ms, "" = none).
-- Returns the new version, or -1 when the version moved (reload and retry).
--@include sla_lib
local p = KEYS[1] .. ":"
local tid = ARGV[1]
local bucket, field = sla_slot(tid)
local bkey = p .. "sla:b:" .. bucket
local rec = redis.call("HGET", bkey, field)
local v = rec and tonumber(string.match(rec, "^(%d+)|")) or 0
if v ~= tonumber(ARGV[2]) then return -1 end
redis.call("HSET", bkey, field, (v + 1) .. "|" .. ARGV[3])
sla_wake(p, bucket, ARGV[4])
sla_overdue(p, tid, ARGV[6])
sla_count(p, tid, ARGV[5])
return v + 1
