-- One dramatiq queue's figures for /metrics, read in one step from dramatiq's Redis layout:
--   <ns>:<q> list of ids waiting, <ns>:<q>.msgs id -> message (waiting and in flight),
--   <ns>:<q>.DQ[.msgs] the delay queue (retries wait there), <ns>:<q>.XQ dead letters,
--   <ns>:__acks__.<worker>.<q> ids a worker fetched and has not acked,
--   <ns>:__heartbeats__ workers by last heartbeat.
-- ARGV: namespace, queue, delay queue, dead-letter queue, now (ms).
-- Returns {queued, in_flight, delayed, dead, oldest age ms or -1}.
-- Counts come from lengths only. The oldest age is sampled from at most SAMPLE bodies (the
-- queue's and the delay queue's heads, one message of the longest-silent worker holding any),
-- and only each body's tail is searched: a batch can be megabytes, and this runs on /healthz.
local ns, q, dq, xq, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local WORKERS = 64  -- longest-silent workers looked at for a held message, at most
local TAIL = 64     -- dramatiq's JSON ends with "message_timestamp":<ms>}

local queued = redis.call("LLEN", ns .. ":" .. q)
local in_flight = redis.call("HLEN", ns .. ":" .. q .. ".msgs") - queued
if in_flight < 0 then in_flight = 0 end
local delayed = redis.call("HLEN", ns .. ":" .. dq .. ".msgs")
local dead = redis.call("ZCARD", ns .. ":" .. xq)

local oldest = -1

local function look(name, id)
  if not id then return end
  local body = redis.call("HGET", ns .. ":" .. name .. ".msgs", id)
  if not body then return end
  local _, _, stamp = string.find(body, '"message_timestamp":(%d+)', math.max(1, #body - TAIL))
  stamp = tonumber(stamp)
  if stamp and now - stamp > oldest then oldest = now - stamp end
end

look(q, redis.call("LINDEX", ns .. ":" .. q, 0))
look(dq, redis.call("LINDEX", ns .. ":" .. dq, 0))

-- held ones: the worker silent longest (a dead one first) still holding some of this queue
local workers = redis.call("ZRANGE", ns .. ":__heartbeats__", 0, WORKERS - 1)
local found = {}
for _, w in ipairs(workers) do
  for _, name in ipairs({q, dq}) do
    if not found[name] then
      local id = redis.call("SRANDMEMBER", ns .. ":__acks__." .. w .. "." .. name)
      if id then look(name, id); found[name] = true end
    end
  end
  if found[q] and found[dq] then break end
end

return {queued, in_flight, delayed, dead, oldest}
