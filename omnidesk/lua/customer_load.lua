-- A customer PostgreSQL knows, put back in Redis so intake.lua finds it by any identity.
-- A customer already back (another worker, a message moments ago) keeps what Redis holds:
-- Redis is the newer copy of a hot customer. An identity Redis links to someone else
-- stays theirs (HSETNX), as intake.lua links identities.
-- ARGV: prefix, customer id, created_ms, now_ms, JSON [field, value, ...], identity keys...
local p = ARGV[1] .. ":"
local cid = ARGV[2]
local ckey = p .. "customer:" .. cid
if redis.call("EXISTS", ckey) == 0 then
  redis.call("HSET", ckey, "id", cid, unpack(cjson.decode(ARGV[5])))
  redis.call("ZADD", p .. "customers", "NX", ARGV[3], cid)
end
redis.call("HSET", ckey, "seen_ms", ARGV[4])
for i = 6, #ARGV do
  if redis.call("HSETNX", p .. "identity", ARGV[i], cid) == 1 then
    redis.call("SADD", ckey .. ":ids", ARGV[i])
  end
end
return 1
