-- Claim due buckets (hashes of ~100 tickets' SLA records whose earliest wakeup is due) until
-- they hold at least `limit` tickets, and return every record in them so the sweeper needs no
-- second round trip. A claimed bucket's due score becomes the lease: its expiry in ms plus
-- 0.5, a value no other claim can produce (a later claim comes after this lease ran out, so
-- its lease ends later), which makes it the fencing token the commit checks. A sweeper that
-- dies mid-batch leaves its buckets to be claimed again when the lease runs out.
-- P:stats sla_held counts the buckets under a lease.
-- ARGV: prefix, now_ms, lease (expiry ms + 0.5), limit.
-- Returns {bucket, {id, record, id, record, ...}, bucket, {...}, ...}.
local p = ARGV[1] .. ":"
local due = p .. "sla:due"
local limit = tonumber(ARGV[4])
local got = redis.call("ZRANGEBYSCORE", due, 0, ARGV[2], "WITHSCORES", "LIMIT", 0, limit)
local out, lease, fresh, n = {}, {}, 0, 0
for i = 1, #got, 2 do
  if n >= limit then break end
  local bucket, score = got[i], tonumber(got[i + 1])
  if score == math.floor(score) then fresh = fresh + 1 end  -- not an expired lease
  local records = redis.call("HGETALL", p .. "sla:b:" .. bucket)
  n = n + #records / 2
  out[#out + 1] = bucket
  out[#out + 1] = records
  lease[#lease + 1] = ARGV[3]
  lease[#lease + 1] = bucket
  redis.call("SREM", p .. "sla:dirty", bucket)  -- read afresh just now
end
for i = 1, #lease, 2000 do  -- one ZADD per 1000 buckets (Lua's unpack has a stack limit)
  redis.call("ZADD", due, unpack(lease, i, math.min(#lease, i + 1999)))
end
if fresh > 0 then redis.call("HINCRBY", p .. "stats", "sla_held", fresh) end
return out
