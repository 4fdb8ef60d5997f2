-- Drop customers from the eviction candidates (P:evict:customers, which evict.lua fills)
-- that need no more tries: gone from Redis (evicted), or with a ticket in Redis again (its
-- eviction adds the customer back). The others (kept for their grace, or not yet fully in
-- PostgreSQL) stay for the next pass, so none is forgotten in Redis.
-- KEYS[1]: the key prefix. ARGV: customer ids... Returns how many were dropped.
local p = KEYS[1] .. ":"
local dropped = 0
for i = 1, #ARGV do
  local ckey = p .. "customer:" .. ARGV[i]
  if redis.call("EXISTS", ckey) == 0 or redis.call("ZCARD", ckey .. ":tickets") > 0 then
    dropped = dropped + redis.call("SREM", p .. "evict:customers", ARGV[i])
  end
end
return dropped
