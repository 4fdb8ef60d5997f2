-- Take a ticket off its agent (resolve, transfer, merge, hand back): the agent's slot frees.
-- KEYS[1]: the key prefix. ARGV[1]: JSON {ticket, requeue ("1": back into its queue's waiting
-- set if open), holder (optional: release only if this agent holds it now, so a ticket handed
-- to someone else since the caller looked stays theirs)}. Returns the agent it had, or ""
-- (none), or false (no such ticket); with `holder`, the agent it has when that is another
-- (nothing changed).
--@include ticket_lib
local p, a, tkey = ticket_args()
local tid = a.ticket
local t = redis.call("HMGET", tkey, "assignee", "queue", "status", "score")
if not t[2] then return false end
local agent = t[1] or ""
if a.holder and a.holder ~= agent then return agent end
if agent ~= "" then
  redis.call("ZREM", p .. "agent:" .. agent .. ":open", tid)
  redis.call("HDEL", tkey, "assignee")
  redis.call("HSET", tkey, "last_assignee", agent)
end
if a.requeue == "1" and (t[3] == "new" or t[3] == "open") then
  redis.call("ZADD", p .. "queue:" .. t[2] .. ":waiting", t[4], tid)
end
return agent
