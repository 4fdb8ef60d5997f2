-- Before intake (omnidesk/known.py): who a batch's senders are in Redis, and which of its
-- dedupe keys Redis has seen, in one round trip. A customer found here is stamped
-- `seen_ms`, so the customer eviction (customer_evict.lua) leaves it alone while the
-- message that found it is on its way to intake.lua.
-- KEYS[1]: the key prefix. ARGV: now_ms, JSON {"ids": [identity keys], "seen": [dedupe keys]}
-- Returns JSON {"ids": [customer id or ""], "customers": {id: [segment, region, tags]},
--               "seen": [0 | 1]}
local p = KEYS[1] .. ":"
local a = cjson.decode(ARGV[2])
local ids, customers, seen = {}, {}, {}
for i, ik in ipairs(a.ids) do
  local cid = redis.call("HGET", p .. "identity", ik)
  ids[i] = cid or ""
  if cid and not customers[cid] then
    local ckey = p .. "customer:" .. cid
    local c = redis.call("HMGET", ckey, "id", "segment", "region", "tags")
    if c[1] then redis.call("HSET", ckey, "seen_ms", ARGV[1]) end
    customers[cid] = {c[2] or "", c[3] or "", c[4] or ""}
  end
end
for i, k in ipairs(a.seen) do  -- P:seen, or an auto-reply's key of its own (intake.lua)
  seen[i] = redis.call("HEXISTS", p .. "seen", k)
  if seen[i] == 0 then seen[i] = redis.call("EXISTS", p .. "seen:auto:" .. k) end
end
return cjson.encode({ids = ids, customers = customers, seen = seen})
