-- Items out of the quarantine (retried or purged): hash, index entry and their kept bytes.
-- KEYS[1]: the key prefix. ARGV: ids... Returns how many items were there.
local p = KEYS[1] .. ":"
local removed = 0
for i = 1, #ARGV do
  local key = p .. "quarantine:" .. ARGV[i]
  local kept = redis.call("HGET", key, "kept")
  if redis.call("DEL", key) == 1 then
    removed = removed + 1
    if kept then redis.call("DECRBY", p .. "quarantine:bytes", tonumber(kept)) end
  end
  redis.call("ZREM", p .. "quarantine", ARGV[i])
end
return removed
