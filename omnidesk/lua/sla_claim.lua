-- Claim up to `limit` tickets whose next SLA wakeup is due, and return their records so the
-- sweeper needs no second round trip. Their due score becomes the lease expiry: a sweeper
-- that dies mid-batch leaves them to be claimed again when the lease runs out.
-- Scores below 0 are running clocks already overdue with nothing left to fire (at_risk reads
-- them); they are never claimed.
-- ARGV: prefix, now_ms, lease_ms, limit, token. Returns {id, record, id, record, ...}
-- (record "" when the state is gone).
local p = ARGV[1] .. ":"
local due, owner = p .. "sla:due", p .. "sla:owner"
local until_ms = tonumber(ARGV[2]) + tonumber(ARGV[3])
local ids = redis.call("ZRANGEBYSCORE", due, 0, ARGV[2], "LIMIT", 0, tonumber(ARGV[4]))
local out = {}
for _, tid in ipairs(ids) do
  redis.call("ZADD", due, until_ms, tid)
  redis.call("HSET", owner, tid, ARGV[5])
  local bucket = string.match(tid, "^(.-)%d%d$") or "_"
  out[#out + 1] = tid
  out[#out + 1] = redis.call("HGET", p .. "sla:b:" .. bucket, tid) or ""
end
return out
