-- One dramatiq queue's figures for /metrics, read in one step from dramatiq's Redis layout:
--   <ns>:<q> list of ids waiting, <ns>:<q>.msgs id -> message (waiting and in flight),
--   <ns>:<q>.DQ[.msgs] the delay queue (retries wait there), <ns>:<q>.XQ dead letters,
--   <ns>:__acks__.<worker>.<q> ids a worker fetched and has not acked,
--   <ns>:__heartbeats__ workers by last heartbeat.
-- ARGV: namespace, queue, delay queue, dead-letter queue, now (ms).
-- Returns {queued, in_flight, delayed, retrying, dead, oldest age ms or -1}.
-- Message bodies are only pattern-matched here (never sent back): a batch can be megabytes.
local ns, q, dq, xq, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local SAMPLE = 1000  -- messages looked into per kind, at most

local queued = redis.call("LLEN", ns .. ":" .. q)
local in_flight = redis.call("HLEN", ns .. ":" .. q .. ".msgs") - queued
if in_flight < 0 then in_flight = 0 end
local delayed = redis.call("HLEN", ns .. ":" .. dq .. ".msgs")
local dead = redis.call("ZCARD", ns .. ":" .. xq)

local oldest = -1
local retrying = 0

local function look(hash, id, count_retry)
  local body = redis.call("HGET", hash, id)
  if not body then return end
  local stamp = tonumber(string.match(body, '"message_timestamp":%s*(%d+)'))
  if stamp and (oldest < 0 or now - stamp > oldest) then oldest = now - stamp end
  if count_retry then
    local retries = tonumber(string.match(body, '"retries":%s*(%d+)'))
    if retries and retries > 0 then retrying = retrying + 1 end
  end
end

local head = redis.call("LINDEX", ns .. ":" .. q, 0)
if head then look(ns .. ":" .. q .. ".msgs", head, false) end

-- in flight and delayed: the ids held by each worker still in the heartbeat set
local looked = 0
local workers = redis.call("ZRANGE", ns .. ":__heartbeats__", 0, -1)
for _, w in ipairs(workers) do
  for _, name in ipairs({q, dq}) do
    local ids = redis.call("SMEMBERS", ns .. ":__acks__." .. w .. "." .. name)
    for _, id in ipairs(ids) do
      if looked < SAMPLE then
        look(ns .. ":" .. name .. ".msgs", id, true)
        looked = looked + 1
      end
    end
  end
end
-- delayed ones no worker holds yet
local waiting = redis.call("LRANGE", ns .. ":" .. dq, 0, SAMPLE - 1)
for _, id in ipairs(waiting) do look(ns .. ":" .. dq .. ".msgs", id, true) end

return {queued, in_flight, delayed, retrying, dead, oldest}
