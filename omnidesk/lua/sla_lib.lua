-- Helpers shared by the SLA scripts (`--@include sla_lib`, see omnidesk.store.lua).
-- Keys, with p = "<prefix>:": p.."sla:b:"..bucket (hash of records), p.."sla:due" (zset of
-- buckets by their earliest wakeup, or a sweeper's lease), p.."sla:dirty" (set of leased
-- buckets written since they were claimed), p.."sla:overdue" (zset: running tickets past
-- a deadline, by that deadline), p.."sla:n" (hash of counts).

-- Where a ticket's record lives (sweeper.slot): the bucket is its id less the last two
-- digits, the field those digits; an id not ending in two digits is a field of bucket "".
-- A record is "<version>|<wake>|<packed state>", <wake> the ticket's wakeup in ms, base 36
-- ("" = none).
local function sla_slot(tid)
  local bucket, field = string.match(tid, "^(.-)(%d%d)$")
  if bucket then return bucket, field end
  return "", tid
end

-- Lower a bucket's wakeup to `score` (ms; "" = nothing to wake up for). A bucket
-- a sweeper holds (its score is a lease, x.5) is marked dirty instead: the holder then
-- re-examines it when it commits.
local function sla_wake(p, bucket, score)
  local due = p .. "sla:due"
  local cur = redis.call("ZSCORE", due, bucket)
  if cur and tonumber(cur) ~= math.floor(tonumber(cur)) then
    redis.call("SADD", p .. "sla:dirty", bucket)
  elseif score ~= "" then
    redis.call("ZADD", due, "LT", score, bucket)
  end
end

-- The overdue index: running tickets past their earliest deadline, by that deadline (ms;
-- "" = not overdue), which at_risk lists first.
local function sla_overdue(p, tid, overdue)
  if overdue ~= "" then
    redis.call("ZADD", p .. "sla:overdue", overdue, tid)
  else
    redis.call("ZREM", p .. "sla:overdue", tid)
  end
end

-- The count's bookkeeping once the ticket's queue and its current `sla_n` (`old`, false for
-- none) are known; returns the new `sla_n` (false for none). The sweeper's commit calls it on
-- fields it read already.
local function sla_count_known(p, tid, queue, old, standing)
  local new = false
  if standing ~= "" then new = queue .. "|" .. standing end
  if new == old then return old end
  local tkey = p .. "ticket:" .. tid
  if old then redis.call("HINCRBY", p .. "sla:n", old, -1) end
  if new then
    redis.call("HINCRBY", p .. "sla:n", new, 1)
    redis.call("HSET", tkey, "sla_n", new)
  else
    redis.call("HDEL", tkey, "sla_n")
  end
  return new
end

-- Per-queue counts of tickets by SLA standing (running, paused, warned, breached):
-- p.."sla:n" "<queue>|<standing>" -> n, for /metrics. The ticket hash's sla_n field says
-- where the ticket is counted now. standing nil keeps it (the ticket moved to `queue`); ""
-- uncounts it (every clock stopped). A ticket without a ticket hash is not counted.
local function sla_count(p, tid, standing, queue)
  local tkey = p .. "ticket:" .. tid
  local t = redis.call("HMGET", tkey, "queue", "sla_n")
  local old = t[2]
  queue = queue or t[1]
  if not queue then return end
  if standing == nil then
    if not old then return end
    standing = string.match(old, "|(%a*)$")
  end
  sla_count_known(p, tid, queue, old, standing)
end
