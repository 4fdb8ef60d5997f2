-- Evict done tickets PostgreSQL holds up to date: every key and every entry Redis keeps for
-- them goes, atomically, or the ticket is left for a later pass.
--
-- Safe because the records writer acknowledges a stream entry only after the snapshot it
-- took (after the entry was added) is committed. Entries below the writer group's low
-- water mark (its oldest pending entry, else the one after its last delivered) are
-- acknowledged. So if no entry from that mark on names the ticket, every event of the
-- ticket was written with a snapshot newer than it, and every change to a ticket or its
-- messages adds an event naming the ticket in the same script or MULTI. The check and the
-- deletion are one script: no event can slip in between.
--
-- A closed ticket goes at once (the caller's candidates may ask for a grace), a resolved one
-- once intake would no longer reopen it (resolved_ms older than the reopen window; without
-- resolved_ms intake never reopens it).
-- KEYS[1]: the key prefix. ARGV: group, now_ms, reopen_ms, max_tail, ticket ids...
-- Returns {state, evicted ids, skipped ids, gone ids, customer ids of the evicted}; state is
-- "ok", "nogroup" (no writer has run: nothing is known written) or "behind" (more than
-- max_tail entries to write: try again once the writer caught up).
--@include sla_lib
local p = KEYS[1] .. ":"
local group = ARGV[1]
local now, reopen = tonumber(ARGV[2]), tonumber(ARGV[3])
local max_tail = tonumber(ARGV[4])
local stream = p .. "events"
local STATUSES = {"new", "open", "pending_customer", "resolved", "closed"}

-- the low water mark: entries from here on may not be written yet
local info = false
if redis.call("EXISTS", stream) == 1 then
  for _, g in ipairs(redis.call("XINFO", "GROUPS", stream)) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f["name"] == group then info = f end
  end
end
if not info then return {"nogroup", {}, {}, {}, {}} end
local from = "(" .. info["last-delivered-id"]
if tonumber(info["pending"]) > 0 then
  from = redis.call("XPENDING", stream, group)[2]
end
local tail = redis.call("XRANGE", stream, from, "+", "COUNT", max_tail + 1)
if #tail > max_tail then return {"behind", {}, {}, {}, {}} end
local unwritten = {}
for _, entry in ipairs(tail) do
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == "ticket" then unwritten[f[i + 1]] = true end
  end
end
-- entries the writer set aside (acknowledged, but not written: P:records:failed, kept for
-- an operator) keep their tickets in Redis too
for _, record in ipairs(redis.call("HVALS", p .. "records:failed")) do
  local ok, r = pcall(cjson.decode, record)
  if ok and type(r) == "table" and type(r.fields) == "table" and r.fields.ticket then
    unwritten[r.fields.ticket] = true
  end
end

local function drop_if(hash, field, value)
  if field and field ~= "" and redis.call("HGET", hash, field) == value then
    redis.call("HDEL", hash, field)
  end
end

local function split(text)
  local out = {}
  if text then for k in string.gmatch(text, "[^\n]+") do out[#out + 1] = k end end
  return out
end

local evicted, skipped, gone, customers = {}, {}, {}, {}
for i = 5, #ARGV do
  local tid = ARGV[i]
  local tkey = p .. "ticket:" .. tid
  local t = redis.call("HMGET", tkey, "status", "resolved_ms", "channel", "queue",
                       "customer_id", "assignee", "thread_keys", "account")
  local done = t[1] == "closed"
  if t[1] == "resolved" then done = (not t[2]) or now - tonumber(t[2]) >= reopen end
  if not t[1] then
    gone[#gone + 1] = tid
  elseif unwritten[tid] or not done then
    skipped[#skipped + 1] = tid
  else
    -- its messages: hash, dedupe entries (the message's and its edits'), thread keys
    local mids = redis.call("LRANGE", tkey .. ":msgs", 0, -1)
    for _, mid in ipairs(mids) do
      local mkey = p .. "msg:" .. mid
      local m = redis.call("HMGET", mkey, "channel", "account", "external_id", "mkeys", "edits")
      if m[3] then
        drop_if(p .. "seen", m[1] .. ":" .. (m[2] or t[8] or "") .. ":" .. m[3], mid)
      end
      for _, k in ipairs(split(m[4])) do drop_if(p .. "thread", k, tid) end
      for _, k in ipairs(split(m[5])) do drop_if(p .. "seen", k, mid) end
      redis.call("DEL", mkey)
    end
    -- per-POST dedupe keys of forms known by their content (intake.lua)
    for _, k in ipairs(redis.call("LRANGE", tkey .. ":posts", 0, -1)) do
      redis.call("HDEL", p .. "seen", k)
    end
    -- the ticket's own thread keys, where they still point to it (a chat's may not)
    if t[7] then
      for _, k in ipairs(cjson.decode(t[7])) do drop_if(p .. "thread", k, tid) end
    end
    drop_if(p .. "thread", "ticket:" .. tid, tid)
    -- its SLA record, overdue entry and per-queue count (reads the ticket hash: first)
    local bucket, field = sla_slot(tid)
    redis.call("HDEL", p .. "sla:b:" .. bucket, field)
    if redis.call("EXISTS", p .. "sla:b:" .. bucket) == 0 then  -- an emptied bucket's wakeup
      local score = redis.call("ZSCORE", p .. "sla:due", bucket)  -- (unless a sweeper holds it)
      if score and tonumber(score) == math.floor(tonumber(score)) then
        redis.call("ZREM", p .. "sla:due", bucket)
      end
    end
    sla_overdue(p, tid, "")
    sla_count(p, tid, "")
    -- the indexes
    redis.call("ZREM", p .. "tickets", tid)
    for _, s in ipairs(STATUSES) do redis.call("ZREM", p .. "status:" .. s, tid) end
    if t[4] then
      redis.call("ZREM", p .. "queue:" .. t[4] .. ":all", tid)
      redis.call("ZREM", p .. "queue:" .. t[4] .. ":waiting", tid)
    end
    if t[6] and t[6] ~= "" then redis.call("ZREM", p .. "agent:" .. t[6] .. ":open", tid) end
    if t[5] then
      redis.call("ZREM", p .. "customer:" .. t[5] .. ":tickets", tid)
      customers[#customers + 1] = t[5]
      -- a candidate for evict_customers until it leaves or has a ticket again
      redis.call("SADD", p .. "evict:customers", t[5])
    end
    redis.call("DEL", tkey, tkey .. ":msgs", tkey .. ":posts")
    evicted[#evicted + 1] = tid
  end
end
return {"ok", evicted, skipped, gone, customers}
