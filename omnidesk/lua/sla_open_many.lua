-- Start the clocks of many new tickets in one call (intake's batches, bulk loads): each
-- ticket that has no SLA record yet gets "1|<packed state>" and its due score; a ticket
-- that already has one keeps it (a redelivery, or a racing writer got there first).
-- ARGV: prefix, then triples ticket_id, packed_state, score ("" = nothing to wake up for).
-- Returns one flag per ticket: 1 written, 0 kept.
local p = ARGV[1] .. ":"
local out = {}
for i = 2, #ARGV, 3 do
  local tid = ARGV[i]
  local bkey = p .. "sla:b:" .. (string.match(tid, "^(.-)%d%d$") or "_")
  if redis.call("HSETNX", bkey, tid, "1|" .. ARGV[i + 1]) == 1 then
    if ARGV[i + 2] ~= "" then redis.call("ZADD", p .. "sla:due", ARGV[i + 2], tid) end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
