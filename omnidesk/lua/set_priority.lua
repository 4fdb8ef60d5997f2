-- Change a ticket's priority and re-sort it in its waiting set (ticket_lib's urgency_score).
-- KEYS[1]: the key prefix. ARGV[1]: JSON {ticket, priority, rank (0 low .. 3 urgent), actor,
-- now_ms}.
-- Returns the old priority or false.
--@include ticket_lib
local p, a, tkey = ticket_args()
local tid = a.ticket
local t = redis.call("HMGET", tkey, "priority", "score", "queue", "channel")
if not t[1] then return false end
local score = urgency_score(tonumber(a.rank), urgency_due(tonumber(t[2])))
redis.call("HSET", tkey, "priority", a.priority, "score", string.format("%d", score))
redis.call("ZADD", p .. "queue:" .. t[3] .. ":waiting", "XX", score, tid)
write_event(p, "priority_changed", tid, t[3], t[4], a.actor, a.now_ms,
            {"from", t[1], "to", a.priority})
return t[1]
