-- A replica says it is alive.
-- KEYS[1]: the replicas (sorted set: token -> when last heard from, ms by Redis's clock).
-- ARGV[1]: this replica's token; ARGV[2]: how long a replica counts as alive (ms).
if redis.replicate_commands then
  redis.replicate_commands()
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local live = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - live)
redis.call('PEXPIRE', KEYS[1], 2 * live)
return 0
