-- Claim up to `limit` tickets whose next SLA step is due: their due score becomes the lease
-- expiry, so a sweeper that dies mid-step leaves them to be claimed again when it runs out.
-- ARGV: prefix, now_ms, lease_ms, limit, token. Returns the claimed ticket ids.
local p = ARGV[1] .. ":"
local due, owner = p .. "sla:due", p .. "sla:owner"
local until_ms = tonumber(ARGV[2]) + tonumber(ARGV[3])
local ids = redis.call("ZRANGEBYSCORE", due, "-inf", ARGV[2], "LIMIT", 0, tonumber(ARGV[4]))
for _, tid in ipairs(ids) do
  redis.call("ZADD", due, until_ms, tid)
  redis.call("HSET", owner, tid, ARGV[5])
end
return ids
