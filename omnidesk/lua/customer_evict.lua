-- One customer leaves Redis, atomically, unless it still has work here. Python checked
-- beforehand that PostgreSQL records the customer with every identity listed in ARGV;
-- this script re-checks, at the moment of removal, what may have changed since:
-- - a ticket of the customer is in Redis (intake.lua opened one meanwhile): kept;
-- - a message found it or loaded it back within grace_ms (known.lua, customer_load.lua
--   stamp seen_ms) and may be on its way to intake.lua: kept;
-- - it has an identity PostgreSQL was not asked about (linked meanwhile): kept.
-- KEYS[1]: the key prefix. ARGV: customer id, now_ms, grace_ms, verified identity keys...
-- Returns 1 when removed, 0 when kept.
local p = KEYS[1] .. ":"
local cid = ARGV[1]
local ckey = p .. "customer:" .. cid
local now, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
for _, tid in ipairs(redis.call("ZRANGE", ckey .. ":tickets", 0, -1)) do
  if redis.call("EXISTS", p .. "ticket:" .. tid) == 1 then return 0 end
end
local seen = tonumber(redis.call("HGET", ckey, "seen_ms") or "0")
if now - seen < grace then return 0 end
local verified = {}
for i = 4, #ARGV do verified[ARGV[i]] = true end
local ids = redis.call("SMEMBERS", ckey .. ":ids")
for _, ik in ipairs(ids) do
  if not verified[ik] then return 0 end
end
for _, ik in ipairs(ids) do
  if redis.call("HGET", p .. "identity", ik) == cid then redis.call("HDEL", p .. "identity", ik) end
end
redis.call("DEL", ckey, ckey .. ":ids", ckey .. ":tickets")
redis.call("ZREM", p .. "customers", cid)
return 1
