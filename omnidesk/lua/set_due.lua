-- Move tickets' next SLA due times (omnidesk.store.Store.set_due_many, the SLA hooks): for
-- each, ticket_lib's set_due, atomically with its check, so a ticket gone meanwhile is not
-- made again as a hash of a score and a due time.
-- KEYS[1]: the key prefix. ARGV[1]: now in ms (the events' time); then for each ticket 3:
-- ticket_id, due_ms, due_at (ISO). Returns how many moved.
--@include ticket_lib
local p = KEYS[1] .. ":"
local moved = 0
for i = 2, #ARGV, 3 do
  moved = moved + set_due(p, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[1])
end
return moved
