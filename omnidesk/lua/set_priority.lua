-- Change a ticket's priority and re-sort it in its waiting set (ticket_lib's urgency_score).
-- ARGV: prefix, ticket_id, priority, rank (0 low .. 3 urgent), actor, now_ms.
-- Returns the old priority or false.
--@include ticket_lib
local p = ARGV[1] .. ":"
local tid = ARGV[2]
local tkey = p .. "ticket:" .. tid
local t = redis.call("HMGET", tkey, "priority", "score", "queue", "channel")
if not t[1] then return false end
local score = urgency_score(tonumber(ARGV[4]), urgency_due(tonumber(t[2])))
redis.call("HSET", tkey, "priority", ARGV[3], "score", string.format("%d", score))
redis.call("ZADD", p .. "queue:" .. t[3] .. ":waiting", "XX", score, tid)
write_event(p, "priority_changed", tid, t[3], t[4], ARGV[5], ARGV[6],
            {"from", t[1], "to", ARGV[3]})
return t[1]
