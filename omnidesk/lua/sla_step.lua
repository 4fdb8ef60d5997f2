-- Fire one ladder step, all or nothing: the state with the step marked fired, the ticket's
-- changes (priority, tag, reassign, move to a queue), the sla_warned/sla_breached event and
-- the counter. Only the lease holder, and only on the state version it read, may fire, so a
-- step fires once even with several sweepers and across restarts.
-- ARGV: prefix, ticket_id, token, expected_v, state_json, event_type, event_json,
--       actions_json, now_ms, now_iso.
-- Returns {new_v, queue, channel}; {-1} when the state moved; {-2} when the lease was lost.
local p = ARGV[1] .. ":"
local tid, token = ARGV[2], ARGV[3]
if redis.call("HGET", p .. "sla:owner", tid) ~= token then return {-2} end
local skey = p .. "sla:" .. tid
local v = tonumber(redis.call("HGET", skey, "v") or "0")
if v ~= tonumber(ARGV[4]) then return {-1} end
redis.call("HSET", skey, "s", ARGV[5], "v", v + 1)

local RANK = {low = 0, normal = 1, high = 2, urgent = 3}
local NAME = {[0] = "low", [1] = "normal", [2] = "high", [3] = "urgent"}
local now_ms, now_iso = ARGV[9], ARGV[10]
local tkey = p .. "ticket:" .. tid
local t = redis.call("HMGET", tkey, "queue", "priority", "score", "status", "assignee",
                     "channel", "tags", "created_ms")
local queue, channel = t[1] or "", t[6] or ""
local waiting_ok = function(status, assignee)
  return (status == "new" or status == "open") and (not assignee or assignee == "")
end

if t[1] then
  local score = tonumber(t[3] or "0")
  local due_ms = score % 1e13
  local rank = RANK[t[2] or "normal"] or 1
  local status, assignee = t[4], t[5]
  local actions = cjson.decode(ARGV[8])
  for _, a in ipairs(actions) do
    if a.raise_priority or a.set_priority then
      if a.raise_priority then rank = math.min(3, rank + a.raise_priority)
      else rank = RANK[a.set_priority] or rank end
      score = (3 - rank) * 1e13 + due_ms
      redis.call("HSET", tkey, "priority", NAME[rank], "score", string.format("%.0f", score))
      if waiting_ok(status, assignee) then
        redis.call("ZADD", p .. "queue:" .. queue .. ":waiting", score, tid)
      end
    elseif a.tag then
      local tags = {}
      if t[7] and t[7] ~= "" then tags = cjson.decode(t[7]) end
      local seen = false
      for _, x in ipairs(tags) do if x == a.tag then seen = true end end
      if not seen then
        table.insert(tags, a.tag)
        t[7] = cjson.encode(tags)
        redis.call("HSET", tkey, "tags", t[7])
      end
    elseif a.reassign then
      if assignee and assignee ~= "" then
        redis.call("HDEL", tkey, "assignee")
        assignee = nil
        if waiting_ok(status, assignee) then
          redis.call("ZADD", p .. "queue:" .. queue .. ":waiting", score, tid)
        end
      end
    elseif a.move_to and a.move_to ~= queue then
      -- the same bookkeeping as move.lua, kept in this script so the step stays atomic
      local q = a.move_to
      redis.call("ZREM", p .. "queue:" .. queue .. ":all", tid)
      redis.call("ZREM", p .. "queue:" .. queue .. ":waiting", tid)
      redis.call("ZADD", p .. "queue:" .. q .. ":all", t[8] or now_ms, tid)
      redis.call("SADD", p .. "queues", q)
      redis.call("HSET", tkey, "queue", q, "updated_at", now_iso)
      redis.call("HDEL", tkey, "assignee")
      assignee = nil
      if status == "new" or status == "open" then
        redis.call("ZADD", p .. "queue:" .. q .. ":waiting", score, tid)
      end
      redis.call("XADD", p .. "events", "*", "type", "escalated", "ticket", tid, "queue", q,
                 "channel", channel, "actor", "sla", "ts", now_ms, "from", queue,
                 "reason", "SLA ladder")
      queue = q
    end
  end
end

local fields = {"type", ARGV[6], "ticket", tid, "queue", queue, "channel", channel,
                "actor", "sla", "ts", now_ms}
local extra = cjson.decode(ARGV[7])
for k, val in pairs(extra) do
  table.insert(fields, k)
  table.insert(fields, tostring(val))
end
redis.call("XADD", p .. "events", "*", unpack(fields))
redis.call("HINCRBY", p .. "stats", ARGV[6], 1)
return {v + 1, queue, channel}
