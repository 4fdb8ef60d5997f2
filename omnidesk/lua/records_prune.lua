-- Forget a consumer of the events stream's group that holds nothing: a dead daemon's,
-- once its entries were claimed. Checked and deleted in one step, so an entry delivered
-- to it meanwhile is never dropped with it (DELCONSUMER forgets a consumer's pending).
-- KEYS[1] the stream; ARGV: group, consumer. Returns 1 when deleted.
local held = redis.call("XPENDING", KEYS[1], ARGV[1], "-", "+", 1, ARGV[2])
if #held > 0 then
  return 0
end
redis.call("XGROUP", "DELCONSUMER", KEYS[1], ARGV[1], ARGV[2])
return 1
