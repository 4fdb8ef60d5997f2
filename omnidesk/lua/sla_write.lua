-- Write one ticket's SLA record if nobody changed it since it was read (compare-and-set on
-- the version the record starts with, "<v>|<wake>|<packed state>"), then its bucket's
-- wakeup, the overdue index, the per-queue counts and the ticket's next due time (ticket_lib's
-- set_due). The due time is set here, under the compare-and-set: set after it, by a second
-- call, two transitions of one ticket could land their due times in the other order.
-- KEYS[1]: the key prefix. ARGV: ticket_id, expected_v, body ("<wake>|<packed state>"),
-- score (the wake in ms, "" = nothing to wake up for), standing ("" = every clock stopped),
-- overdue (the passed deadline in ms, "" = none), due_ms ("" = leave the due time alone),
-- due_at (ISO), now in ms (a due_changed event's time).
-- Returns the new version, or -1 when the version moved (reload and retry).
--@include sla_lib
--@include ticket_lib
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
if ARGV[7] ~= "" then set_due(p, tid, ARGV[7], ARGV[8], ARGV[9]) end
return v + 1
