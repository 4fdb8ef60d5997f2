-- Helpers shared by the ticket scripts (`--@include ticket_lib`, see omnidesk.store.lua): the
-- event write, the status move and the urgency score, written once for every script.

-- A ticket script's opening: the key prefix from KEYS[1], the named arguments (a JSON object
-- in ARGV[1]), and the hash key of the ticket they name.
local function ticket_args()
  local p = KEYS[1] .. ":"
  local a = cjson.decode(ARGV[1])
  return p, a, p .. "ticket:" .. a.ticket
end

-- Append one event to P:events. `kind` is an omnidesk.events.EventType value (the test
-- tests/test_events.py reads every call of this function for it); `extra` is the type's own
-- fields as a flat {name, value, ...} list (omnidesk.events names them).
local function write_event(p, kind, tid, queue, channel, actor, ts, extra)
  local f = {"type", kind, "ticket", tid, "queue", queue or "", "channel", channel or "",
             "actor", actor, "ts", ts}
  if extra then
    for i = 1, #extra do f[#f + 1] = extra[i] end
  end
  return redis.call("XADD", p .. "events", "*", unpack(f))
end

-- Move a ticket from one status index to another and write the status on its hash; the
-- caller keeps the waiting set and writes the event (each has its own).
local function move_status(p, tid, created, old, new)
  redis.call("ZREM", p .. "status:" .. old, tid)
  redis.call("ZADD", p .. "status:" .. new, created, tid)
  redis.call("HSET", p .. "ticket:" .. tid, "status", new)
end

-- The urgency score of a waiting ticket (omnidesk.store.urgency_score): priority rank first
-- (urgent = 3 sorts lowest), then the SLA due time in ms; `urgency_due` takes it back out.
local URGENCY_BAND = 1e13
local function urgency_score(rank, due_ms)
  return (3 - rank) * URGENCY_BAND + due_ms
end
local function urgency_due(score)
  return score % URGENCY_BAND
end

-- A ticket's next SLA due time (sla_write.lua, sla_open_many.lua, Store.set_due_many): its
-- urgency score and, while it waits for an agent, its place in the queue, with a due_changed
-- event for the records writer. Nothing when the ticket is gone or already has this due
-- time. 1 if moved.
local DUE_RANK = {low = 0, normal = 1, high = 2, urgent = 3}
local function set_due(p, tid, due_ms, due_iso, ts)
  local tkey = p .. "ticket:" .. tid
  local t = redis.call("HMGET", tkey, "queue", "priority", "status", "assignee", "due_at",
                       "channel")
  if not t[1] or t[5] == due_iso then return 0 end
  local score = string.format("%.0f", urgency_score(DUE_RANK[t[2]] or 1, tonumber(due_ms)))
  redis.call("HSET", tkey, "score", score, "due_at", due_iso)
  if (t[3] == "new" or t[3] == "open") and not t[4] then
    redis.call("ZADD", p .. "queue:" .. t[1] .. ":waiting", score, tid)
  end
  write_event(p, "due_changed", tid, t[1], t[6], "sla", ts, {"due_at", due_iso})
  return 1
end

-- Hand a ticket taken off its waiting set to an agent (claim, push, a supervisor's
-- reassign): assignee, the agent's open set, and a new ticket becomes open.
local function hand_to(p, tid, agent, now, now_iso, status, created)
  redis.call("HSET", p .. "ticket:" .. tid, "assignee", agent, "assigned_ms", now,
             "updated_at", now_iso)
  redis.call("ZADD", p .. "agent:" .. agent .. ":open", now, tid)
  if status == "new" then move_status(p, tid, created, "new", "open") end
end
