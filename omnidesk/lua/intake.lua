-- Intake of a batch of Inbounds, in order, each atomically: dedupe, edit, thread, or open a
-- ticket. One call per batch: a later item sees what an earlier one did, as with one call
-- each.
-- KEYS[1] is the key prefix; ARGV[1] a JSON list of objects prepared by omnidesk/intake.py
-- (see `_prepare` there).
-- Returns for each item {outcome, ticket_id, message_id, customer_id, reopened}, or
-- {"error", message}.
--@include ticket_lib
local p = KEYS[1] .. ":"
local OPEN = {new = true, open = true, pending_customer = true}
local a, now  -- the item being taken in, and its time in ms: read by the helpers below

local function event(kind, tid, queue, extra)
  write_event(p, kind, tid, queue, a.channel, "intake", a.now_ms, extra)
end

-- a form known by its content: this POST's own key (see step 1), forgotten with the ticket.
-- A ticket keeps the last MAX_POSTS of them: a form posted again and again (a script, a
-- stuck button) cannot grow Redis, and a redelivery is of a recent POST.
local MAX_POSTS = 100
local function note_post(tid, mid)
  if a.post ~= "" and tid ~= "" then
    local posts = p .. "ticket:" .. tid .. ":posts"
    redis.call("HSET", p .. "seen", a.post, mid)
    if redis.call("RPUSH", posts, a.post) > MAX_POSTS then
      redis.call("HDEL", p .. "seen", redis.call("LPOP", posts))
    end
  end
end

-- The message's thread keys (its own, and for a follow-up the thread keys it came with,
-- which the ticket's thread_keys field does not list) are recorded on the message hash as
-- `mkeys`, so eviction (evict.lua) removes every P:thread entry it added.
local function add_message(tid, follow_up)
  local mkey = p .. "msg:" .. a.mid
  redis.call("HSET", mkey, "id", a.mid, "ticket_id", tid, unpack(a.message))
  local mkeys = {}
  for _, k in ipairs(a.message_keys) do
    redis.call("HSET", p .. "thread", k, tid)
    mkeys[#mkeys + 1] = k
  end
  if follow_up then
    for _, k in ipairs(a.thread_keys) do
      redis.call("HSET", p .. "thread", k, tid)
      mkeys[#mkeys + 1] = k
    end
  end
  if #mkeys > 0 then redis.call("HSET", mkey, "mkeys", table.concat(mkeys, "\n")) end
  redis.call("RPUSH", p .. "ticket:" .. tid .. ":msgs", a.mid)
  redis.call("HSET", p .. "seen", a.dedupe, a.mid)
  note_post(tid, a.mid)
  redis.call("HSET", p .. "ticket:" .. tid, "updated_at", a.now_iso)
  redis.call("HINCRBY", p .. "stats", "in:" .. a.channel, 1)
end

local function intake_one()
  -- 1. seen before: nothing to do. An id that is only a hash of the content is a duplicate
  -- only while its ticket is open, or when this very POST was taken in before (a.post, its
  -- content hash and receive time: a redelivery); after that the same content is a new
  -- message, which step 3 (thread key, reopen window) or step 5 (a new ticket) takes (see
  -- intake.py).
  local auto_key = p .. "seen:auto:" .. a.dedupe  -- an auto-reply that opened nothing (step 4)
  local prior = redis.call("HGET", p .. "seen", a.dedupe)
  if not prior and redis.call("EXISTS", auto_key) == 1 then prior = "-" end
  if prior then
    local tid = ""
    if prior ~= "-" then tid = redis.call("HGET", p .. "msg:" .. prior, "ticket_id") or "" end
    local done = false
    if a.content_id == "1" and prior ~= "-" then
      local again = a.post ~= "" and redis.call("HGET", p .. "seen", a.post)
      if again then
        prior = again
        tid = redis.call("HGET", p .. "msg:" .. again, "ticket_id") or ""
      else
        local st = tid ~= "" and redis.call("HGET", p .. "ticket:" .. tid, "status")
        done = not (st and OPEN[st])
        if not done then note_post(tid, prior) end  -- its redelivery stays this duplicate
      end
    end
    if not done then
      redis.call("HINCRBY", p .. "stats", "duplicates", 1)
      return {"duplicate", tid, prior, "", "0"}
    end
  end

  -- 2. an edit of a message we hold: update its text in place
  if a.edit_of ~= "" then
    local orig = redis.call("HGET", p .. "seen", a.edit_of)
    local mkey = p .. "msg:" .. (orig or "-")
    local tid = orig and orig ~= "-" and redis.call("HGET", mkey, "ticket_id")
    if tid then  -- not when its ticket was archived since: the edit then comes in as new
      redis.call("HSET", mkey, "text", a.edit_text, "edited_at", a.now_iso)
      redis.call("HSET", p .. "seen", a.dedupe, orig)
      local edits = redis.call("HGET", mkey, "edits")  -- for eviction: the edits' dedupe keys
      redis.call("HSET", mkey, "edits", edits and (edits .. "\n" .. a.dedupe) or a.dedupe)
      redis.call("HSET", p .. "ticket:" .. tid, "updated_at", a.now_iso)
      local queue = redis.call("HGET", p .. "ticket:" .. tid, "queue") or ""
      event("message_edited", tid, queue, {"message", orig})
      return {"edited", tid, orig, "", "0"}
    end
  end

  -- 3. a thread key of an open, or recently resolved, ticket
  local tid = false
  for _, k in ipairs(a.thread_keys) do
    local t = redis.call("HGET", p .. "thread", k)
    if t then
      local st = redis.call("HMGET", p .. "ticket:" .. t, "status", "resolved_ms")
      if OPEN[st[1]] then tid = t break end
      if st[1] == "resolved" and st[2] and now - tonumber(st[2]) <= tonumber(a.reopen_ms) then
        tid = t
        break
      end
    end
  end

  if tid then
    local tkey = p .. "ticket:" .. tid
    local t = redis.call("HMGET", tkey, "status", "queue", "created_ms", "assignee", "score")
    add_message(tid, true)
    local extra = {"message", a.mid}
    if a.auto == "1" then extra = {"message", a.mid, "auto", "1"} end
    event("message_added", tid, t[2], extra)
    if a.auto == "1" then return {"auto_attached", tid, a.mid, "", "0"} end
    local reopened = "0"
    if t[1] == "resolved" or t[1] == "pending_customer" then
      move_status(p, tid, t[3], t[1], "open")
      redis.call("HDEL", tkey, "resolved_ms")
      if (not t[4]) or t[4] == "" then
        redis.call("ZADD", p .. "queue:" .. t[2] .. ":waiting", t[5], tid)
      end
      event("status_changed", tid, t[2], {"from", t[1], "to", "open"})
      if t[1] == "resolved" then reopened = "1" end
    end
    return {"appended", tid, a.mid, "", reopened}
  end

  -- 4. an auto-reply or bounce with no ticket to attach to opens nothing; its dedupe entry
  -- lasts the dedupe window (a key of its own, with a TTL: nothing grows per auto-reply)
  if a.auto == "1" then
    redis.call("SET", auto_key, "-", "EX", a.dedupe_window_s)
    redis.call("HINCRBY", p .. "stats", "auto_ignored", 1)
    event("auto_reply_ignored", "", "", {"external_id", a.dedupe})
    return {"auto_ignored", "", "", "", "0"}
  end

  -- 5. a new ticket; find the customer by its lookup identities (intake.lookup_keys), link
  -- the others to it. A sender the channel does not vouch for (a.vouched "0": the web form,
  -- where anyone types any e-mail or phone) links nothing onto a customer that exists: else
  -- a stranger's e-mail typed beside a victim's phone would get the victim's status and mail.
  local cid = false
  for _, ik in ipairs(a.lookup) do
    cid = redis.call("HGET", p .. "identity", ik)
    if cid then break end
  end
  local link = (not cid) or a.vouched == "1"
  if not cid then
    cid = string.format("C-%08d", redis.call("INCR", p .. "seq:customer"))
    redis.call("HSET", p .. "customer:" .. cid, "id", cid, unpack(a.customer))
    redis.call("ZADD", p .. "customers", now, cid)
  elseif a.customer_name ~= "" then
    redis.call("HSETNX", p .. "customer:" .. cid, "name", a.customer_name)
  end
  for _, ik in ipairs(link and a.identities or {}) do
    if redis.call("HSETNX", p .. "identity", ik, cid) == 1 then
      redis.call("SADD", p .. "customer:" .. cid .. ":ids", ik)
    end
  end

  local n = redis.call("INCR", p .. "seq:ticket:" .. a.year)
  tid = string.format("OD-%s-%06d", a.year, n)
  local tkey = p .. "ticket:" .. tid
  local created = a.created_ms
  -- created_ms is the customer's message time; opened_ms when intake opened the ticket
  redis.call("HSET", tkey, "id", tid, "customer_id", cid, "created_ms", created,
             "opened_ms", a.now_ms, "score", a.score, unpack(a.ticket))
  -- its first SLA due time (intake.py, the first_dues hook): the score above follows it
  if a.due_at ~= "" then redis.call("HSET", tkey, "due_at", a.due_at) end
  redis.call("ZADD", p .. "tickets", created, tid)
  redis.call("ZADD", p .. "status:new", created, tid)
  redis.call("ZADD", p .. "queue:" .. a.queue .. ":all", created, tid)
  redis.call("ZADD", p .. "queue:" .. a.queue .. ":waiting", a.score, tid)
  redis.call("SADD", p .. "queues", a.queue)
  redis.call("ZADD", p .. "customer:" .. cid .. ":tickets", created, tid)
  redis.call("HSET", p .. "thread", "ticket:" .. tid, tid)
  for _, k in ipairs(a.thread_keys) do redis.call("HSET", p .. "thread", k, tid) end
  add_message(tid, false)
  redis.call("HINCRBY", p .. "stats", "opened", 1)
  event("ticket_opened", tid, a.queue, {"customer", cid, "message", a.mid, "created", created,
                                         "segment", a.segment or "", "region", a.region or ""})
  event("routed", tid, a.queue,
        {"rule", a.rule, "priority", a.priority, "sla_policy", a.sla_policy})
  return {"opened", tid, a.mid, cid, "0"}
end

-- An item that fails (a Lua error) is {"error", message}, and the items after it are still
-- taken in: intake.py then fails the batch, which is idempotent when it runs again.
local out = {}
for i, item in ipairs(cjson.decode(ARGV[1])) do
  a, now = item, tonumber(item.now_ms)
  local ok, reply = pcall(intake_one)
  out[i] = ok and reply or {"error", type(reply) == "table" and reply.err or tostring(reply)}
end
return out
