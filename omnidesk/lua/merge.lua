-- Merge ticket src into dst (same customer): messages and thread keys move to dst, src closes.
-- KEYS[1]: the key prefix. ARGV[1]: JSON {src, dst, actor, now_ms, now_iso}.
-- Returns {"merged", n_messages} | {"error", reason}.
--@include ticket_lib
local p = KEYS[1] .. ":"
local a = cjson.decode(ARGV[1])
local src, dst, actor, now, now_iso = a.src, a.dst, a.actor, a.now_ms, a.now_iso
if src == dst then return {"error", "a ticket cannot be merged into itself"} end
local skey, dkey = p .. "ticket:" .. src, p .. "ticket:" .. dst
local s = redis.call("HMGET", skey, "customer_id", "status", "queue", "created_ms", "assignee",
                     "thread_keys", "channel", "merged_into")
local d = redis.call("HMGET", dkey, "customer_id", "status", "queue", "channel")
if not s[1] then return {"error", "no ticket " .. src} end
if not d[1] then return {"error", "no ticket " .. dst} end
if s[1] ~= d[1] then return {"error", "the tickets belong to different customers"} end
if s[8] then return {"error", src .. " was already merged into " .. s[8]} end
if d[2] == "closed" then return {"error", dst .. " is closed"} end
local mids = redis.call("LRANGE", skey .. ":msgs", 0, -1)
for _, mid in ipairs(mids) do
  local m = redis.call("HMGET", p .. "msg:" .. mid, "channel", "external_id", "direction")
  redis.call("HSET", p .. "msg:" .. mid, "ticket_id", dst, "merged_from", src)
  redis.call("RPUSH", dkey .. ":msgs", mid)
  if m[1] == "email" and m[2] and m[3] == "in" then
    redis.call("HSET", p .. "thread", "email:" .. m[2], dst)
  end
end
redis.call("DEL", skey .. ":msgs")
-- the source's thread keys now point to dst, and dst lists them, so evicting dst removes them
local owned = cjson.decode(redis.call("HGET", dkey, "thread_keys") or "[]")
for _, k in ipairs(cjson.decode(s[6] or "[]")) do
  redis.call("HSET", p .. "thread", k, dst)
  owned[#owned + 1] = k
end
redis.call("HSET", p .. "thread", "ticket:" .. src, dst)
owned[#owned + 1] = "ticket:" .. src
redis.call("HSET", dkey, "thread_keys", cjson.encode(owned))
if s[5] and s[5] ~= "" then
  redis.call("ZREM", p .. "agent:" .. s[5] .. ":open", src)
  redis.call("HDEL", skey, "assignee")
  redis.call("HSET", skey, "last_assignee", s[5])
end
redis.call("ZREM", p .. "queue:" .. s[3] .. ":waiting", src)
move_status(p, src, s[4], s[2], "closed")
redis.call("HSET", skey, "merged_into", dst, "updated_at", now_iso)
redis.call("HSET", dkey, "updated_at", now_iso)
write_event(p, "merged", src, s[3], s[7], actor, now, {"into", dst})
write_event(p, "merged", dst, d[3], d[4], actor, now, {"from", src, "messages", #mids})
return {"merged", #mids}
