-- Push: hand waiting tickets of one queue to available agents (round_robin / least_loaded).
-- Available: presence "online", open tickets below capacity, and the ticket's language among
-- the agent's (mixed/unknown tickets match anyone).
-- KEYS[1]: the key prefix. ARGV[1]: JSON {queue, policy, now_ms, now_iso, scan_limit, agents:
-- [[agent, capacity, langs], ...] in configured order}. Returns a flat list ticket_id, agent,
-- ticket_id, agent, ...
--@include ticket_lib
local p = KEYS[1] .. ":"
local args = cjson.decode(ARGV[1])
local queue, policy, now, now_iso = args.queue, args.policy, args.now_ms, args.now_iso
local limit = tonumber(args.scan_limit)
local agents = {}
local available = 0
for _, m in ipairs(args.agents) do
  local a = {id = m[1], cap = tonumber(m[2]), langs = "," .. m[3] .. ","}
  a.load = redis.call("ZCARD", p .. "agent:" .. a.id .. ":open")
  a.ok = redis.call("GET", p .. "presence:" .. a.id) == "online" and a.load < a.cap
  if a.ok then available = available + 1 end
  agents[#agents + 1] = a
end
if available == 0 then return {} end
local waiting = p .. "queue:" .. queue .. ":waiting"
local rr_key = p .. "rr:" .. queue
local n = #agents
local cursor = tonumber(redis.call("GET", rr_key) or "0") % n
local out = {}
for _, tid in ipairs(redis.call("ZRANGE", waiting, 0, limit - 1)) do
  if available == 0 then break end
  local tkey = p .. "ticket:" .. tid
  local t = redis.call("HMGET", tkey, "status", "created_ms", "channel", "language")
  local lang = t[4] or "unknown"
  local any_lang = lang ~= "ar" and lang ~= "en"
  local chosen, chosen_k = false, false
  for k = 1, n do
    local idx = (cursor + k - 1) % n + 1
    local a = agents[idx]
    if a.ok and (any_lang or string.find(a.langs, "," .. lang .. ",", 1, true)) then
      if policy == "round_robin" then chosen, chosen_k = a, idx break end
      if (not chosen) or a.load < chosen.load then chosen, chosen_k = a, idx end
    end
  end
  if chosen then
    redis.call("ZREM", waiting, tid)
    hand_to(p, tid, chosen.id, now, now_iso, t[1], t[2])
    write_event(p, "assigned", tid, queue, t[3], "assignment", now,
                {"agent", chosen.id, "how", policy})
    chosen.load = chosen.load + 1
    if chosen.load >= chosen.cap then
      chosen.ok = false
      available = available - 1
    end
    cursor = chosen_k % n
    out[#out + 1] = tid
    out[#out + 1] = chosen.id
  end
end
redis.call("SET", rr_key, cursor)
return out
