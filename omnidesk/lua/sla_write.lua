-- Write one ticket's SLA state if nobody changed it since it was read (compare-and-set on v).
-- ARGV: prefix, ticket_id, expected_v, state_json, wakeup_ms ("" = nothing due), due_ms ("" = no
-- running clock). Returns the new version, or -1 when the version moved (reload and retry).
-- While a sweeper holds the ticket (P:sla:owner) the due score is its lease; it re-scores itself.
local p = ARGV[1] .. ":"
local tid = ARGV[2]
local key = p .. "sla:" .. tid
local v = tonumber(redis.call("HGET", key, "v") or "0")
if v ~= tonumber(ARGV[3]) then return -1 end
redis.call("HSET", key, "s", ARGV[4], "v", v + 1)
if not redis.call("HGET", p .. "sla:owner", tid) then
  if ARGV[5] == "" then redis.call("ZREM", p .. "sla:due", tid)
  else redis.call("ZADD", p .. "sla:due", ARGV[5], tid) end
end
if ARGV[6] == "" then redis.call("ZREM", p .. "sla:open", tid)
else redis.call("ZADD", p .. "sla:open", ARGV[6], tid) end
return v + 1
