-- A payload into the quarantine with Redis memory bounded. The caller offers the payload only
-- when it is under the per-item cap; it is kept whole only while all kept bytes stay under the
-- total cap, else the item keeps the head excerpt (the archive on disk has the whole). A repeat
-- of the same id (a retried batch) keeps what the first put decided, and its bytes count once.
-- KEYS[1]: the key prefix. ARGV: id, score (epoch s), total cap, payload ("" when not
-- offered), excerpt, then field, value pairs. Returns the payload bytes kept.
local p = KEYS[1] .. ":"
local qid = ARGV[1]
local key = p .. "quarantine:" .. qid
local kept = redis.call("HGET", key, "kept")
if not kept then
  local offered = #ARGV[4]
  local total = tonumber(redis.call("GET", p .. "quarantine:bytes") or "0")
  kept = 0
  if offered > 0 and total + offered <= tonumber(ARGV[3]) then
    kept = offered
    redis.call("HSET", key, "payload", ARGV[4])
    redis.call("INCRBY", p .. "quarantine:bytes", offered)
  else
    redis.call("HSET", key, "excerpt", ARGV[5])
    redis.call("HDEL", key, "payload")
  end
  redis.call("HSET", key, "kept", kept)
end
for i = 6, #ARGV, 2 do redis.call("HSET", key, ARGV[i], ARGV[i + 1]) end
redis.call("HINCRBY", key, "attempts", 1)
redis.call("ZADD", p .. "quarantine", "NX", ARGV[2], qid)
return tonumber(kept)
