-- Hand a claimed ticket back: score it by its next wakeup (or drop it) and forget the owner.
-- ARGV: prefix, ticket_id, token, expected_v, wakeup_ms ("" = nothing due).
-- Returns 1; -1 when the state moved since read (recompute); -2 when the lease was lost.
local p = ARGV[1] .. ":"
local tid = ARGV[2]
if redis.call("HGET", p .. "sla:owner", tid) ~= ARGV[3] then return -2 end
local v = tonumber(redis.call("HGET", p .. "sla:" .. tid, "v") or "0")
if v ~= tonumber(ARGV[4]) then return -1 end
if ARGV[5] == "" then redis.call("ZREM", p .. "sla:due", tid)
else redis.call("ZADD", p .. "sla:due", ARGV[5], tid) end
redis.call("HDEL", p .. "sla:owner", tid)
return 1
