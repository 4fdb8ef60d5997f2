-- A customer PostgreSQL knows, put back in Redis so intake.lua finds it by any identity.
-- A customer already back (another worker, a message moments ago) keeps what Redis holds:
-- Redis is the newer copy of a hot customer. An identity Redis links to someone else
-- stays theirs (HSETNX), as intake.lua links identities.
-- KEYS[1]: the key prefix. ARGV: customer id, created_ms, now_ms, JSON [field, value, ...],
-- identity keys...
local p = KEYS[1] .. ":"
local cid = ARGV[1]
local ckey = p .. "customer:" .. cid
if redis.call("EXISTS", ckey) == 0 then
  redis.call("HSET", ckey, "id", cid, unpack(cjson.decode(ARGV[4])))
  redis.call("ZADD", p .. "customers", "NX", ARGV[2], cid)
end
redis.call("HSET", ckey, "seen_ms", ARGV[3])
for i = 5, #ARGV do
  if redis.call("HSETNX", p .. "identity", ARGV[i], cid) == 1 then
    redis.call("SADD", ckey .. ":ids", ARGV[i])
  end
end
return 1
