-- An archived ticket leaves the SLA's keys: its record, its overdue entry and its per-queue
-- count (read here, so a sweeper commit just before cannot make the count drift). Runs in
-- the archive's MULTI before the ticket hash is deleted.
-- ARGV: prefix, ticket_id.
--@include sla_lib
local p = ARGV[1] .. ":"
local tid = ARGV[2]
local bucket, field = sla_slot(tid)
redis.call("HDEL", p .. "sla:b:" .. bucket, field)
sla_overdue(p, tid, "")
sla_count(p, tid, "")
return 1
