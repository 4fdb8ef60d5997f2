-- A supervisor hands a ticket to a named agent: off its holder (if any) or its queue's
-- waiting set, onto the agent's open set, atomically (a claim racing it cannot take it too).
-- KEYS[1]: the key prefix. ARGV[1]: JSON {ticket, agent, capacity, now_ms, now_iso, actor,
-- queue (the queue the caller checked the agent's access against: a transfer since then
-- answers {"moved"})}.
-- Returns {"assigned", previous holder or ""} | {"full"} | {"same"} | {"closed"} | {"moved"}
-- | false.
--@include ticket_lib
local p, a, tkey = ticket_args()
local tid, agent, cap, now, now_iso, actor = a.ticket, a.agent, tonumber(a.capacity), a.now_ms,
  a.now_iso, a.actor
local expected = a.queue
local t = redis.call("HMGET", tkey, "status", "queue", "created_ms", "assignee", "channel")
if not t[2] then return false end
if t[2] ~= expected then return {"moved"} end
if t[1] ~= "new" and t[1] ~= "open" and t[1] ~= "pending_customer" then return {"closed"} end
local previous = t[4] or ""
if previous == agent then return {"same"} end
local load_key = p .. "agent:" .. agent .. ":open"
if redis.call("ZCARD", load_key) >= cap then return {"full"} end
if previous ~= "" then
  redis.call("ZREM", p .. "agent:" .. previous .. ":open", tid)
  redis.call("HSET", tkey, "last_assignee", previous)
end
redis.call("ZREM", p .. "queue:" .. t[2] .. ":waiting", tid)
hand_to(p, tid, agent, now, now_iso, t[1], t[3])
write_event(p, "assigned", tid, t[2], t[5], actor, now,
            {"agent", agent, "how", "supervisor", "previous", previous})
return {"assigned", previous}
