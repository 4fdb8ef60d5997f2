-- Commit a claimed batch of buckets, ticket by ticket, all in one script: in each bucket
-- still held by this lease (its due score is still the lease value the claim set, see
-- sla_claim.lua), for each ticket still at the version the sweeper read, write its new state,
-- apply the ladder actions of every step it fired (priority, tag, reassign, move to a queue),
-- append the sla_warned/sla_breached events, count them, keep the overdue index and the
-- per-queue counts; then re-score the bucket by its earliest wakeup and release it.
-- A step is marked fired in the same script that applies it, so it fires once even with
-- several sweepers and across restarts. A bucket written by someone else since it was claimed
-- (dirty, or a ticket's version moved) is re-scored to now, so the next claim re-reads it.
-- KEYS[1]: the key prefix. ARGV: lease, now_ms, now_iso, templates (JSON list of {kind,
--   event: {...}, actions: [...]}, one per ladder step and target in the batch), then per
--   bucket:
--   bucket, score (its earliest wakeup after this batch, "" = none), k, and k times 6:
--   ticket_id, expected_v, body ("<wake>|<packed state>"), overdue (a passed deadline in ms,
--   "" = none), steps ("<template> <due_iso> <late_s> <late>" joined by ";", "" = none
--   fired), standing.
-- Returns per ticket: 1 followed by the ticket's queue after each fired step; -1 when the state
-- moved since it was read (the bucket is re-read by the next claim); -2 when the lease was lost.
--@include sla_lib
--@include ticket_lib
local p = KEYS[1] .. ":"
local lease, now_ms, now_iso = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local due = p .. "sla:due"
local RANK = {low = 0, normal = 1, high = 2, urgent = 3}
local NAME = {[0] = "low", [1] = "normal", [2] = "high", [3] = "urgent"}

-- Queue waiting-set entries this script adds, per queue (member -> score), written with one
-- ZADD per queue at the end of the script; a ZREM of a member drops its pending entry
-- first (`waiting_rem`), so the end state is what the calls in order would have left.
local waiting = {}

local function waiting_add(queue, score, tid)
  waiting[queue] = waiting[queue] or {}
  waiting[queue][tid] = score
end

local function waiting_rem(queue, tid)
  if waiting[queue] then waiting[queue][tid] = nil end
  redis.call("ZREM", p .. "queue:" .. queue .. ":waiting", tid)
end

local function waiting_ok(status, assignee)
  return (status == "new" or status == "open") and (not assignee or assignee == "")
end

-- The ticket hash's fields the steps and the counts read: read once per ticket (`ticket`),
-- and kept current by `apply` as it writes, so a ticket's second step in the same batch
-- sees what its first wrote.
local function ticket(tid)
  return redis.call("HMGET", p .. "ticket:" .. tid, "queue", "priority", "score", "status",
                    "assignee", "channel", "tags", "created_ms", "sla_n")
end

-- one fired step's actions on the ticket hash (`t`, as `ticket` read it); returns the
-- ticket's queue afterwards
local function apply(tid, actions, t)
  local tkey = p .. "ticket:" .. tid
  local queue, channel = t[1] or "", t[6] or ""
  if not t[1] or #actions == 0 then return queue, channel end
  local score = tonumber(t[3] or "0")
  local due_ms = urgency_due(score)
  local rank = RANK[t[2] or "normal"] or 1
  local status, assignee = t[4], t[5]
  local set = {}  -- ticket fields to write, in one HSET at the end
  for _, a in ipairs(actions) do
    if a.raise_priority or a.set_priority then
      if a.raise_priority then rank = math.min(3, rank + a.raise_priority)
      else rank = RANK[a.set_priority] or rank end
      score = urgency_score(rank, due_ms)
      set.priority, set.score = NAME[rank], string.format("%.0f", score)
      t[2], t[3] = set.priority, set.score
      if waiting_ok(status, assignee) then
        waiting_add(queue, score, tid)
      end
    elseif a.tag then
      local tags = {}
      if t[7] and t[7] ~= "" then tags = cjson.decode(t[7]) end
      local seen = false
      for _, x in ipairs(tags) do if x == a.tag then seen = true end end
      if not seen then
        table.insert(tags, a.tag)
        t[7] = cjson.encode(tags)
        set.tags = t[7]
      end
    elseif a.reassign then
      if assignee and assignee ~= "" then
        redis.call("HDEL", tkey, "assignee")
        assignee, t[5] = nil, false
        if waiting_ok(status, assignee) then
          waiting_add(queue, score, tid)
        end
      end
    elseif a.move_to and a.move_to ~= queue then
      -- the same bookkeeping as move.lua, kept here so the step stays atomic
      local q = a.move_to
      redis.call("ZREM", p .. "queue:" .. queue .. ":all", tid)
      waiting_rem(queue, tid)
      redis.call("ZADD", p .. "queue:" .. q .. ":all", t[8] or now_ms, tid)
      redis.call("SADD", p .. "queues", q)
      set.queue, set.updated_at = q, now_iso
      redis.call("HDEL", tkey, "assignee")
      assignee, t[1], t[5] = nil, q, false
      if status == "new" or status == "open" then
        waiting_add(q, score, tid)
      end
      write_event(p, "escalated", tid, q, channel, "sla", now_ms,
                  {"from", queue, "reason", "SLA ladder"})
      queue = q  -- its SLA count follows at the end of the ticket (sla_count)
    end
  end
  local args = {}
  for k, v in pairs(set) do
    args[#args + 1] = k
    args[#args + 1] = v
  end
  if #args > 0 then redis.call("HSET", tkey, unpack(args)) end
  return queue, channel
end

local templates = cjson.decode(ARGV[4])
for _, s in ipairs(templates) do  -- each template's constant event fields, flat
  s.flat = {}
  for k, val in pairs(s.event) do
    s.flat[#s.flat + 1] = k
    s.flat[#s.flat + 1] = tostring(val)
  end
end
-- `cmd key a b c ...` in calls of at most `per` arguments (Lua's unpack has a stack limit)
local function chunked(cmd, key, list, per)
  for c = 1, #list, per do
    redis.call(cmd, key, unpack(list, c, math.min(#list, c + per - 1)))
  end
end

-- sla_count (sla_lib.lua) on a ticket read by `ticket`: no re-read
local function count(tid, standing, t)
  if not t[1] then return end
  t[9] = sla_count_known(p, tid, t[1], t[9], standing)
end

local kinds = {}
local out, released = {}, 0
local i = 5
while i <= #ARGV do
  local bucket, bucket_score, k = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local bkey = p .. "sla:b:" .. bucket
  local held = tonumber(redis.call("ZSCORE", due, bucket) or "0") == lease
  local moved = false
  local fields, records = {}, {}
  if held then  -- the bucket's records these tickets had when claimed, in one read
    for j = i, i + 6 * (k - 1), 6 do
      local _, field = sla_slot(ARGV[j])
      fields[#fields + 1] = field
    end
    for c = 1, #fields, 1000 do
      local got = redis.call("HMGET", bkey, unpack(fields, c, math.min(#fields, c + 999)))
      for x = 1, #got do records[c + x - 1] = got[x] end
    end
  end
  local writes, overdue_add, overdue_rem = {}, {}, {}
  local n = 0
  for j = i, i + 6 * (k - 1), 6 do
    n = n + 1
    local tid, expected = ARGV[j], tonumber(ARGV[j + 1])
    local body, overdue, steps, standing = ARGV[j + 2], ARGV[j + 3], ARGV[j + 4], ARGV[j + 5]
    local rec = held and records[n]
    local v = rec and tonumber(string.match(rec, "^(%d+)|")) or 0
    if not held then
      out[#out + 1] = -2
    elseif v ~= expected then
      out[#out + 1] = -1
      moved = true
    else
      writes[#writes + 1] = fields[n]
      writes[#writes + 1] = (v + 1) .. "|" .. body
      out[#out + 1] = 1
      local t = ticket(tid)
      for tpl, due_iso, late_s, late in string.gmatch(steps, "(%d+) (%S+) (%S+) (%d)") do
        local s = templates[tonumber(tpl)]
        local queue, channel = apply(tid, s.actions, t)
        write_event(p, s.kind, tid, queue, channel, "sla", now_ms,
                    {"due", due_iso, "late_s", late_s, "late", late, unpack(s.flat)})
        kinds[s.kind] = (kinds[s.kind] or 0) + 1
        out[#out + 1] = queue
      end
      if overdue ~= "" then  -- sla_overdue (sla_lib.lua), for the whole bucket at once below
        overdue_add[#overdue_add + 1] = overdue
        overdue_add[#overdue_add + 1] = tid
      else
        overdue_rem[#overdue_rem + 1] = tid
      end
      count(tid, standing, t)
    end
  end
  i = i + 6 * k
  chunked("HSET", bkey, writes, 2000)
  chunked("ZADD", p .. "sla:overdue", overdue_add, 2000)
  chunked("ZREM", p .. "sla:overdue", overdue_rem, 1000)
  if held then
    released = released + 1
    if redis.call("SREM", p .. "sla:dirty", bucket) == 1 or moved then
      redis.call("ZADD", due, now_ms, bucket)  -- written meanwhile: the next claim re-reads it
    elseif bucket_score == "" then
      redis.call("ZREM", due, bucket)
    else
      redis.call("ZADD", due, bucket_score, bucket)
    end
  end
end
for queue, members in pairs(waiting) do
  local flat = {}
  for tid, score in pairs(members) do
    flat[#flat + 1] = score
    flat[#flat + 1] = tid
  end
  chunked("ZADD", p .. "queue:" .. queue .. ":waiting", flat, 2000)
end
for kind, n in pairs(kinds) do redis.call("HINCRBY", p .. "stats", kind, n) end
if released > 0 then redis.call("HINCRBY", p .. "stats", "sla_held", -released) end
return out
