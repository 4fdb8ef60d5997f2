-- Ack one dramatiq message under whichever of this process's worker ids fetched it.
-- ARGV: namespace, queue, redis message id, then worker ids (the current one first).
-- The message is deleted only when an ack set held it (as dramatiq's own ack does); no
-- heartbeat is written here, so an ack still works when Redis refuses writes at maxmemory.
local ns, q, mid = ARGV[1], ARGV[2], ARGV[3]
for i = 4, #ARGV do
  if redis.call("SREM", ns .. ":__acks__." .. ARGV[i] .. "." .. q, mid) > 0 then
    redis.call("HDEL", ns .. ":" .. q .. ".msgs", mid)
    return 1
  end
end
return 0
