-- Messages' delivery statuses (omnidesk.store.Store.set_deliveries): each checked and written
-- in the one script, so two statuses for one message at once cannot undo each other. A status
-- only moves forward along omnidesk.store.DELIVERY_ORDER (passed in as ARGV[3]); a word it
-- does not rank (a channel's own) is always recorded; the same status again is not.
-- KEYS[1]: the key prefix. ARGV[1]: the actor; ARGV[2]: now in ms (the events' time);
-- ARGV[3]: DELIVERY_ORDER as a JSON object; then for each status 2: message_id, status.
-- Returns the ids of the messages not found (nothing is recorded for those).
--@include ticket_lib
local p = KEYS[1] .. ":"
local actor, ts, order = ARGV[1], ARGV[2], cjson.decode(ARGV[3])

-- the status word: "failed: <reason>" -> "failed", trimmed of ASCII blanks
local function word(status)
  if not status then return "" end
  return (string.match(status, "^([^:]*)"):gsub("^%s+", ""):gsub("%s+$", ""))
end

local function supersedes(status, current)
  if status == current then return false end
  local new, old = order[word(status)], order[word(current)]
  return new == nil or old == nil or new >= old
end

local missing = {}
for i = 4, #ARGV, 2 do
  local mid, status = ARGV[i], ARGV[i + 1]
  local mkey = p .. "msg:" .. mid
  local m = redis.call("HMGET", mkey, "ticket_id", "channel", "delivery")
  if not m[1] or m[1] == "" then
    missing[#missing + 1] = mid
  elseif supersedes(status, m[3]) then
    redis.call("HSET", mkey, "delivery", status)
    redis.call("HINCRBY", p .. "stats", "delivery:" .. string.match(status, "^([^:]*)"), 1)
    local queue = redis.call("HGET", p .. "ticket:" .. m[1], "queue")
    write_event(p, "delivery", m[1], queue, m[2], actor, ts,
                {"message", mid, "delivery", status})
  end
end
return missing
