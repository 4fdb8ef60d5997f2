-- Record a CSAT answer once per ticket. ARGV: prefix, token, score, comment, now_ms, now_iso,
-- via. Returns {"recorded", ticket} | {"already", ticket} | {"unknown", ""}.
--@include ticket_lib
local p = ARGV[1] .. ":"
local tid = redis.call("HGET", p .. "csat:" .. ARGV[2], "ticket")
if not tid then return {"unknown", ""} end
local tkey = p .. "ticket:" .. tid
if redis.call("HSETNX", tkey, "csat_score", ARGV[3]) == 0 then return {"already", tid} end
redis.call("HSET", tkey, "csat_at", ARGV[6])
if ARGV[4] ~= "" then redis.call("HSET", tkey, "csat_comment", ARGV[4]) end
local t = redis.call("HMGET", tkey, "queue", "channel")
write_event(p, "csat", tid, t[1], t[2], "customer", ARGV[5],
            {"score", ARGV[3], "comment", ARGV[4], "via", ARGV[7]})
redis.call("HINCRBY", p .. "stats", "csat:" .. ARGV[3], 1)
return {"recorded", tid}
