-- Change a ticket's priority and re-sort it in its waiting set (score = band + due ms).
-- ARGV: prefix, ticket_id, priority, rank (0 low .. 3 urgent), actor, now_ms.
-- Returns the old priority or false.
local p = ARGV[1] .. ":"
local tid = ARGV[2]
local tkey = p .. "ticket:" .. tid
local t = redis.call("HMGET", tkey, "priority", "score", "queue", "channel")
if not t[1] then return false end
local band = 10000000000000
local due = tonumber(t[2]) % band
local score = (3 - tonumber(ARGV[4])) * band + due
redis.call("HSET", tkey, "priority", ARGV[3], "score", string.format("%d", score))
redis.call("ZADD", p .. "queue:" .. t[3] .. ":waiting", "XX", score, tid)
redis.call("XADD", p .. "events", "*", "type", "priority_changed", "ticket", tid, "queue", t[3],
           "channel", t[4], "actor", ARGV[5], "ts", ARGV[6], "from", t[1], "to", ARGV[3])
return t[1]
