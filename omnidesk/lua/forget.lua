-- An archived ticket's traces outside its own keys, removed in the archive's MULTI before the
-- ticket hash goes: its SLA record, overdue entry and per-queue count (read here, so a
-- sweeper commit just before cannot make the count drift); the dedupe entries of its
-- messages and of its forms' POSTs; and the thread keys that still point to it (a chat's
-- key may point to a newer ticket by now, and stays).
-- ARGV: prefix, ticket_id, n_dedupe, dedupe keys..., thread keys...
--@include sla_lib
local p = ARGV[1] .. ":"
local tid = ARGV[2]
local bucket, field = sla_slot(tid)
redis.call("HDEL", p .. "sla:b:" .. bucket, field)
sla_overdue(p, tid, "")
sla_count(p, tid, "")
local n = tonumber(ARGV[3])
for i = 4, 3 + n do redis.call("HDEL", p .. "seen", ARGV[i]) end
local posts = p .. "ticket:" .. tid .. ":posts"  -- per-POST keys of forms (intake.lua)
for _, k in ipairs(redis.call("LRANGE", posts, 0, -1)) do redis.call("HDEL", p .. "seen", k) end
redis.call("DEL", posts)
for i = 4 + n, #ARGV do
  if redis.call("HGET", p .. "thread", ARGV[i]) == tid then
    redis.call("HDEL", p .. "thread", ARGV[i])
  end
end
return 1
