-- Move a ticket to another queue (transfer or escalation), keeping the indexes in step.
-- KEYS[1]: the key prefix. ARGV[1]: JSON {ticket, queue, actor, now_ms, event (transferred or
-- escalated), reason, now_iso}.
--@include sla_lib
--@include ticket_lib
local p, a, tkey = ticket_args()
local tid, q, actor, now = a.ticket, a.queue, a.actor, a.now_ms
local t = redis.call("HMGET", tkey, "queue", "created_ms", "score", "status", "assignee", "channel")
if not t[1] then return false end
redis.call("ZREM", p .. "queue:" .. t[1] .. ":all", tid)
redis.call("ZREM", p .. "queue:" .. t[1] .. ":waiting", tid)
redis.call("ZADD", p .. "queue:" .. q .. ":all", t[2], tid)
redis.call("SADD", p .. "queues", q)
redis.call("HSET", tkey, "queue", q, "updated_at", a.now_iso)
redis.call("HDEL", tkey, "assignee")
sla_count(p, tid, nil, q)  -- its SLA standing is now counted in the new queue
if t[4] == "new" or t[4] == "open" then
  redis.call("ZADD", p .. "queue:" .. q .. ":waiting", t[3], tid)
end
write_event(p, a.event, tid, q, t[6], actor, now, {"from", t[1], "reason", a.reason})
return t[1]
