-- Move a customer's identities and tickets to another customer in one step, so intake (which
-- finds a customer through P:identity) sees the merge whole or not at all.
-- KEYS[1]: the key prefix. ARGV: from, to, all ("1": also whatever Redis holds of `from`
-- beyond the lists), n_identities, identity keys..., ticket ids...
-- Only what `from` still owns moves. Returns {identity keys moved, ticket ids moved}.
--@include ticket_lib
local p = KEYS[1] .. ":"
local from, to, all, n = ARGV[1], ARGV[2], ARGV[3] == "1", tonumber(ARGV[4])
local fids, tids = p .. "customer:" .. from .. ":ids", p .. "customer:" .. from .. ":tickets"
local idents, tickets, seen = {}, {}, {}
for i = 5, 4 + n do idents[#idents + 1] = ARGV[i]; seen[ARGV[i]] = true end
for i = 5 + n, #ARGV do tickets[#tickets + 1] = ARGV[i]; seen[ARGV[i]] = true end
if all then
  for _, k in ipairs(redis.call("SMEMBERS", fids)) do
    if not seen[k] then idents[#idents + 1] = k end
  end
  for _, t in ipairs(redis.call("ZRANGE", tids, 0, -1)) do
    if not seen[t] then tickets[#tickets + 1] = t end
  end
end
local moved_ids, moved_tickets = {}, {}
for _, k in ipairs(idents) do
  if redis.call("HGET", p .. "identity", k) == from then
    redis.call("HSET", p .. "identity", k, to)
    redis.call("SREM", fids, k)
    redis.call("SADD", p .. "customer:" .. to .. ":ids", k)
    moved_ids[#moved_ids + 1] = k
  end
end
for _, t in ipairs(tickets) do
  local score = redis.call("ZSCORE", tids, t)
  local moved = false
  if score then
    redis.call("ZREM", tids, t)
    redis.call("ZADD", p .. "customer:" .. to .. ":tickets", score, t)
    moved = true
  end
  if redis.call("HGET", p .. "ticket:" .. t, "customer_id") == from then
    redis.call("HSET", p .. "ticket:" .. t, "customer_id", to)
    moved = true
  end
  if moved then
    moved_tickets[#moved_tickets + 1] = t
    -- the records writer re-reads the ticket after this event: a snapshot it took before
    -- the move cannot leave PostgreSQL with the old customer
    local q = redis.call("HMGET", p .. "ticket:" .. t, "queue", "channel")
    if q[1] then
      local now = redis.call("TIME")
      write_event(p, "customer_changed", t, q[1], q[2], "merge",
                  tostring(now[1] * 1000 + math.floor(now[2] / 1000)), {"from", from, "to", to})
    end
  end
end
return {moved_ids, moved_tickets}
