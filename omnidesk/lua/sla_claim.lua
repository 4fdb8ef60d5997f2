-- Claim due buckets (hashes of ~100 tickets' SLA records whose earliest wakeup is due) until
-- they hold at least `limit` due tickets, and return those tickets' records so the sweeper
-- needs no second round trip, with each bucket's earliest wakeup among the rest. A claimed
-- bucket's due score becomes the lease: its expiry in ms plus 0.5, a value no other claim
-- can produce (a later claim comes after this lease ran out, so its lease ends later), which
-- makes it the fencing token the commit checks. A sweeper that dies mid-batch leaves its
-- buckets to be claimed again when the lease runs out.
-- P:stats sla_held counts the buckets under a lease.
-- KEYS[1]: the key prefix. ARGV: now_ms, lease (expiry ms + 0.5), limit.
-- Returns {bucket, rest, {field, record, field, record, ...}, bucket, ...}: rest is the
-- earliest wakeup (ms) of the bucket's tickets not returned, -1 for none.
local p = KEYS[1] .. ":"
local due = p .. "sla:due"
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[3])
local got = redis.call("ZRANGEBYSCORE", due, 0, ARGV[1], "WITHSCORES", "LIMIT", 0, limit)
local out, lease, fresh, n = {}, {}, 0, 0
for i = 1, #got, 2 do
  if n >= limit then break end
  local bucket, score = got[i], tonumber(got[i + 1])
  if score == math.floor(score) then fresh = fresh + 1 end  -- not an expired lease
  local flat = redis.call("HGETALL", p .. "sla:b:" .. bucket)
  local records, rest = {}, -1
  for j = 1, #flat, 2 do
    local w = string.match(flat[j + 1], "^%d+|(%w+)|")
    local wake = w and tonumber(w, 36)
    if wake and wake <= now then
      records[#records + 1] = flat[j]
      records[#records + 1] = flat[j + 1]
    elseif wake and (rest < 0 or wake < rest) then
      rest = wake
    end
  end
  n = n + #records / 2
  out[#out + 1] = bucket
  out[#out + 1] = rest
  out[#out + 1] = records
  lease[#lease + 1] = ARGV[2]
  lease[#lease + 1] = bucket
  redis.call("SREM", p .. "sla:dirty", bucket)  -- read afresh just now
end
for i = 1, #lease, 2000 do  -- one ZADD per 1000 buckets (Lua's unpack has a stack limit)
  redis.call("ZADD", due, unpack(lease, i, math.min(#lease, i + 1999)))
end
if fresh > 0 then redis.call("HINCRBY", p .. "stats", "sla_held", fresh) end
return out
