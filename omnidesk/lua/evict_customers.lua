-- Customers with no ticket left in Redis leave it: their hash, identity set, ticket index,
-- their P:identity entries (those still pointing to them) and P:customers entry. Only when
-- no stream entry the records writer may not have written yet names them (see evict.lua:
-- the same low water mark), so PostgreSQL holds what Redis had.
-- ARGV: prefix, group, max_tail, customer ids... Returns the ids removed.
local p = ARGV[1] .. ":"
local group = ARGV[2]
local max_tail = tonumber(ARGV[3])
local stream = p .. "events"
local info = false
if redis.call("EXISTS", stream) == 1 then
  for _, g in ipairs(redis.call("XINFO", "GROUPS", stream)) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f["name"] == group then info = f end
  end
end
if not info then return {} end
local from = "(" .. info["last-delivered-id"]
if tonumber(info["pending"]) > 0 then from = redis.call("XPENDING", stream, group)[2] end
local tail = redis.call("XRANGE", stream, from, "+", "COUNT", max_tail + 1)
if #tail > max_tail then return {} end
local unwritten = {}
for _, entry in ipairs(tail) do
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == "customer" then unwritten[f[i + 1]] = true end
  end
end
local removed = {}
for i = 4, #ARGV do
  local cid = ARGV[i]
  local ckey = p .. "customer:" .. cid
  if not unwritten[cid] and redis.call("ZCARD", ckey .. ":tickets") == 0
     and redis.call("EXISTS", ckey) == 1 then
    for _, ik in ipairs(redis.call("SMEMBERS", ckey .. ":ids")) do
      if redis.call("HGET", p .. "identity", ik) == cid then
        redis.call("HDEL", p .. "identity", ik)
      end
    end
    redis.call("DEL", ckey, ckey .. ":ids", ckey .. ":tickets")
    redis.call("ZREM", p .. "customers", cid)
    removed[#removed + 1] = cid
  end
end
return removed
