-- Claim up to `limit` tickets whose next SLA wakeup is due, and return their records so the
-- sweeper needs no second round trip. Their due score becomes the lease: its expiry in ms plus
-- 0.5, a value no other claim can produce (a later claim comes after this lease ran out, so
-- its lease ends later), which makes it the fencing token the commit checks. A sweeper that
-- dies mid-batch leaves its tickets to be claimed again when the lease runs out.
-- Scores below 0 are running clocks already overdue with nothing left to fire (at_risk reads
-- them); they are never claimed. P:stats sla_held counts the tickets under a lease.
-- ARGV: prefix, now_ms, lease (expiry ms + 0.5), limit.
-- Returns {id, record, id, record, ...} (record "" when the state is gone).
local p = ARGV[1] .. ":"
local due = p .. "sla:due"
local got = redis.call("ZRANGEBYSCORE", due, 0, ARGV[2], "WITHSCORES", "LIMIT", 0,
                       tonumber(ARGV[4]))
local out, fresh, lease = {}, 0, {}
for i = 1, #got, 2 do
  local tid, score = got[i], tonumber(got[i + 1])
  lease[#lease + 1] = ARGV[3]
  lease[#lease + 1] = tid
  if score == math.floor(score) then fresh = fresh + 1 end  -- not an expired lease
  local bucket = string.match(tid, "^(.-)%d%d$") or "_"
  out[#out + 1] = tid
  out[#out + 1] = redis.call("HGET", p .. "sla:b:" .. bucket, tid) or ""
end
for i = 1, #lease, 2000 do  -- one ZADD per 1000 tickets (Lua's unpack has a stack limit)
  redis.call("ZADD", due, unpack(lease, i, math.min(#lease, i + 1999)))
end
if fresh > 0 then redis.call("HINCRBY", p .. "stats", "sla_held", fresh) end
return out
