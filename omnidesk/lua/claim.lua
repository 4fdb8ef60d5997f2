-- Pull: give an agent the most urgent waiting ticket of its queues, atomically.
-- KEYS[1]: the key prefix. ARGV[1]: JSON {agent, capacity, now_ms, now_iso, queues: [...]}.
-- Returns {"claimed", ticket_id, queue} | {"full"} | {"empty"}.
--@include ticket_lib
local p = KEYS[1] .. ":"
local a = cjson.decode(ARGV[1])
local agent, cap, now, now_iso = a.agent, tonumber(a.capacity), a.now_ms, a.now_iso
local load_key = p .. "agent:" .. agent .. ":open"
if redis.call("ZCARD", load_key) >= cap then return {"full"} end
local best, best_q, best_s = false, false, false
for _, q in ipairs(a.queues) do
  local top = redis.call("ZRANGE", p .. "queue:" .. q .. ":waiting", 0, 0, "WITHSCORES")
  if top[1] and ((not best_s) or tonumber(top[2]) < best_s) then
    best, best_q, best_s = top[1], q, tonumber(top[2])
  end
end
if not best then return {"empty"} end
local tkey = p .. "ticket:" .. best
redis.call("ZREM", p .. "queue:" .. best_q .. ":waiting", best)
local t = redis.call("HMGET", tkey, "status", "created_ms", "channel")
hand_to(p, best, agent, now, now_iso, t[1], t[2])
write_event(p, "assigned", best, best_q, t[3], agent, now, {"agent", agent, "how", "pull"})
return {"claimed", best, best_q}
