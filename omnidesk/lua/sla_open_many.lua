-- Start the clocks of many new tickets in one call (intake's batches, bulk loads): each
-- ticket that has no SLA record yet gets "1|<wake>|<packed state>", its bucket's wakeup and its
-- per-queue count; a ticket that already has one keeps it (a redelivery, or a racing writer
-- got there first).
-- With a due time, an opened ticket's queue order follows it, as store.set_due_many does:
-- score = (3 - priority rank) * 1e13 + due_ms, kept on the ticket with due_at, and a due time
-- that moved is told by a due_changed event (for the records writer). Intake already wrote a
-- new ticket's first due time, so for it nothing moves; a repair's clocks may.
-- KEYS[1]: the key prefix. ARGV[1]: now in ms (the events' time); then for each ticket 7:
-- ticket_id, body ("<wake>|<packed state>"), wake in ms ("" = nothing to wake up for), due_ms
-- ("" = leave the queue order alone), due_at (ISO), standing, overdue (a passed deadline in
-- ms, for a repair that starts clocks in the past).
-- Returns one flag per ticket: 1 written, 0 kept.
--@include sla_lib
--@include ticket_lib
local p = KEYS[1] .. ":"
local rank = {low = 0, normal = 1, high = 2, urgent = 3}
local out, wake = {}, {}
for i = 2, #ARGV, 7 do
  local tid = ARGV[i]
  local bucket, field = sla_slot(tid)
  if redis.call("HSETNX", p .. "sla:b:" .. bucket, field, "1|" .. ARGV[i + 1]) == 1 then
    local score = tonumber(ARGV[i + 2])
    if score and (not wake[bucket] or score < wake[bucket]) then
      wake[bucket] = score
    end
    if ARGV[i + 3] ~= "" then
      local tkey = p .. "ticket:" .. tid
      local t = redis.call("HMGET", tkey, "queue", "priority", "status", "assignee", "due_at",
                           "channel")
      if t[1] and t[5] ~= ARGV[i + 4] then
        local urgency = urgency_score(rank[t[2]] or 1, tonumber(ARGV[i + 3]))
        local text = string.format("%.0f", urgency)
        redis.call("HSET", tkey, "score", text, "due_at", ARGV[i + 4])
        if (t[3] == "new" or t[3] == "open") and not t[4] then
          redis.call("ZADD", p .. "queue:" .. t[1] .. ":waiting", text, tid)
        end
        write_event(p, "due_changed", tid, t[1], t[6], "sla", ARGV[1], {"due_at", ARGV[i + 4]})
      end
    end
    sla_count(p, tid, ARGV[i + 5])
    if ARGV[i + 6] ~= "" then sla_overdue(p, tid, ARGV[i + 6]) end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
for bucket, score in pairs(wake) do sla_wake(p, bucket, string.format("%.0f", score)) end
return out
