-- Change a ticket's status; keep the status index, the waiting set (open, unassigned tickets
-- only) and the event in step.
-- KEYS[1]: the key prefix. ARGV[1]: JSON {ticket, status, actor, now_ms, now_iso, reason}.
-- Returns the old status or false. A reason (why a ticket waits) goes into the event with the
-- change, in one step.
--@include ticket_lib
local p, a, tkey = ticket_args()
local tid, new, actor, now = a.ticket, a.status, a.actor, a.now_ms
local t = redis.call("HMGET", tkey, "status", "queue", "created_ms", "assignee", "score", "channel")
if not t[1] then return false end
if t[1] == new then return t[1] end
move_status(p, tid, t[3], t[1], new)
redis.call("HSET", tkey, "updated_at", a.now_iso)
local waiting = p .. "queue:" .. t[2] .. ":waiting"
if new == "resolved" or new == "closed" or new == "pending_customer" then
  redis.call("ZREM", waiting, tid)
  if new == "resolved" then redis.call("HSET", tkey, "resolved_ms", now) end
elseif (new == "open" or new == "new") and ((not t[4]) or t[4] == "") then
  redis.call("ZADD", waiting, t[5], tid)
  redis.call("HDEL", tkey, "resolved_ms")
end
local extra = {"from", t[1], "to", new}
if a.reason and a.reason ~= "" then extra = {"from", t[1], "to", new, "reason", a.reason} end
write_event(p, "status_changed", tid, t[2], t[6], actor, now, extra)
return t[1]
