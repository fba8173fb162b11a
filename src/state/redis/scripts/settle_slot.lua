-- A slot's request was answered (or given up on): it counts from now.
-- KEYS[1]: the robot's slots in flight; KEYS[1 + j]: window j.
-- ARGV[1]: the slot's id; ARGV[2]: how much later than now the robot may still count it
-- (ms); ARGV[2 + j]: window j's length plus its margin (ms).
-- Returns Redis's now (ms since the epoch).
if redis.replicate_commands then
  redis.replicate_commands()
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
local late = tonumber(ARGV[2])
for j = 1, #KEYS - 1 do
  local key = KEYS[1 + j]
  local leaves = now + late + tonumber(ARGV[2 + j])
  redis.call('ZADD', key, leaves, ARGV[1])
  if redis.call('PTTL', key) < leaves - now then
    redis.call('PEXPIRE', key, leaves - now)
  end
end
return now
