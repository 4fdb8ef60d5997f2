-- Write one ticket's SLA record if nobody changed it since it was read (compare-and-set on
-- the version the record starts with, "<v>|<packed state>").
-- ARGV: prefix, ticket_id, expected_v, packed_state, score ("" = nothing to wake up for).
-- Returns the new version, or -1 when the version moved (reload and retry).
-- While a sweeper holds the ticket its due score is the lease (x.5, see sla_claim.lua); the
-- sweeper re-scores it when it commits.
local p = ARGV[1] .. ":"
local tid = ARGV[2]
local bkey = p .. "sla:b:" .. (string.match(tid, "^(.-)%d%d$") or "_")
local rec = redis.call("HGET", bkey, tid)
local v = rec and tonumber(string.match(rec, "^(%d+)|")) or 0
if v ~= tonumber(ARGV[3]) then return -1 end
redis.call("HSET", bkey, tid, (v + 1) .. "|" .. ARGV[4])
local score = tonumber(redis.call("ZSCORE", p .. "sla:due", tid) or "0")
if score == math.floor(score) then
  if ARGV[5] == "" then redis.call("ZREM", p .. "sla:due", tid)
  else redis.call("ZADD", p .. "sla:due", ARGV[5], tid) end
end
return v + 1
