-- May these new tickets have their receipts? Decided once per ticket, atomically, so a batch
-- run again (a redelivery, two workers) sends none twice (omnidesk/receipts.py). One call
-- per batch: the tickets are decided in order, as one call each would decide them.
-- KEYS[1] is the key prefix; ARGV[1] a JSON object: limit, window_ms, now_ms, max_age_ms,
-- and tickets, a list of [ticket, first (the message that opened it, as intake returned
-- it), sender (the customer id)].
-- Returns for each ticket "claimed" or why not: "done", "gone", "stale", "not_new",
-- "closed", "limited"; or {"error", message}.
local a = cjson.decode(ARGV[1])
local p = KEYS[1] .. ":"
local now, window = tonumber(a.now_ms), tonumber(a.window_ms)
local limit, max_age = tonumber(a.limit), tonumber(a.max_age_ms)

local function claim(ticket, first, sender)
  local tkey = p .. "ticket:" .. ticket
  local t = redis.call("HMGET", tkey, "status", "receipt", "opened_ms")
  if not t[1] then return "gone" end
  if t[2] then return "done" end  -- decided before: claimed, or refused for good
  -- no field is not "never decided" for a ticket opened long ago (before receipts, or mail
  -- re-read after an IMAP UIDVALIDITY reset): only a ticket intake opened recently may
  -- still be owed one (opened_ms, not created_ms: a message may reach intake a day late)
  local opened = tonumber(t[3])
  if not opened or now - opened > max_age then return "stale" end
  -- a duplicate of a follow-up, or of an edit, is not the message that opened the ticket
  if redis.call("LINDEX", tkey .. ":msgs", 0) ~= first then return "not_new" end
  if t[1] ~= "new" and t[1] ~= "open" then return "closed" end
  -- receipts this sender had in the last window: one entry per ticket, the key expires
  -- with the window, so a quiet sender costs nothing
  local rkey = p .. "receipts:sender:" .. sender
  redis.call("ZREMRANGEBYSCORE", rkey, "-inf", now - window)
  if redis.call("ZCARD", rkey) >= limit then
    redis.call("HSET", tkey, "receipt", "limited")
    redis.call("HINCRBY", p .. "stats", "receipts_limited", 1)
    return "limited"
  end
  redis.call("ZADD", rkey, now, ticket)
  redis.call("PEXPIRE", rkey, window)
  redis.call("HSET", tkey, "receipt", "claimed")
  return "claimed"
end

-- a ticket whose claim fails (a Lua error) is {"error", message}; the others are decided
local out = {}
for i, t in ipairs(a.tickets) do
  local ok, reply = pcall(claim, t[1], t[2], t[3])
  out[i] = ok and reply or {"error", type(reply) == "table" and reply.err or tostring(reply)}
end
return out
