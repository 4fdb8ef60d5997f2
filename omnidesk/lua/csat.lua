-- Record a CSAT answer once per ticket. KEYS[1]: the key prefix. ARGV[1]: JSON {token, score,
-- comment, now_ms, now_iso, via}. Returns {"recorded", ticket} | {"already", ticket} |
-- {"unknown", ""}.
--@include ticket_lib
local p = KEYS[1] .. ":"
local a = cjson.decode(ARGV[1])
local tid = redis.call("HGET", p .. "csat:" .. a.token, "ticket")
if not tid then return {"unknown", ""} end
local tkey = p .. "ticket:" .. tid
if redis.call("HSETNX", tkey, "csat_score", a.score) == 0 then return {"already", tid} end
redis.call("HSET", tkey, "csat_at", a.now_iso)
if a.comment ~= "" then redis.call("HSET", tkey, "csat_comment", a.comment) end
local t = redis.call("HMGET", tkey, "queue", "channel")
write_event(p, "csat", tid, t[1], t[2], "customer", a.now_ms,
            {"score", a.score, "comment", a.comment, "via", a.via})
redis.call("HINCRBY", p .. "stats", "csat:" .. a.score, 1)
return {"recorded", tid}
