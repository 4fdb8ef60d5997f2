-- Start the clocks of many new tickets in one call (intake's batches, bulk loads): each
-- ticket that has no SLA record yet gets "1|<wake>|<packed state>", its bucket's wakeup and its
-- per-queue count; a ticket that already has one keeps it (a redelivery, or a racing writer
-- got there first).
-- With a due time, an opened ticket's queue order follows it (ticket_lib's set_due, as
-- set_due.lua does): a due time that moved is told by a due_changed event. Intake already
-- wrote a new ticket's first due time, so for it nothing moves; a repair's clocks may.
-- KEYS[1]: the key prefix. ARGV[1]: now in ms (the events' time); then for each ticket 7:
-- ticket_id, body ("<wake>|<packed state>"), wake in ms ("" = nothing to wake up for), due_ms
-- ("" = leave the queue order alone), due_at (ISO), standing, overdue (a passed deadline in
-- ms, for a repair that starts clocks in the past).
-- Returns one flag per ticket: 1 written, 0 kept.
--@include sla_lib
--@include ticket_lib
local p = KEYS[1] .. ":"
local out, wake = {}, {}
for i = 2, #ARGV, 7 do
  local tid = ARGV[i]
  local bucket, field = sla_slot(tid)
  if redis.call("HSETNX", p .. "sla:b:" .. bucket, field, "1|" .. ARGV[i + 1]) == 1 then
    local score = tonumber(ARGV[i + 2])
    if score and (not wake[bucket] or score < wake[bucket]) then
      wake[bucket] = score
    end
    if ARGV[i + 3] ~= "" then set_due(p, tid, ARGV[i + 3], ARGV[i + 4], ARGV[1]) end
    sla_count(p, tid, ARGV[i + 5])
    if ARGV[i + 6] ~= "" then sla_overdue(p, tid, ARGV[i + 6]) end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
for bucket, score in pairs(wake) do sla_wake(p, bucket, string.format("%.0f", score)) end
return out
