-- Takes a slot in every one of a robot's windows at once, or says how long until one frees.
-- KEYS[1]: this Redis's epoch (a string every replica reads; it never expires): a new one
-- means Redis lost what it held (a restart without persistence, a flush, a failover).
-- KEYS[2]: the replicas (sorted set: token -> when last heard from, ms).
-- KEYS[3]: the robot's slots in flight (sorted set: slot -> when its hold ends, ms).
-- KEYS[3 + j]: window j (sorted set: slot -> when it leaves the window, ms).
-- ARGV[1]: an epoch to set if there is none; ARGV[2]: the new slot's id; ARGV[3]: how long
-- it may stay in flight (ms); ARGV[4]: the calling replica's token; ARGV[5]: how many
-- replicas share the robot; ARGV[6]: how long a replica counts as alive (ms);
-- ARGV[5 + 2j], ARGV[6 + 2j]: window j's limit and length (ms).
-- A replica not heard from lately may be sending on its own share of each window
-- (limit / replicas, at least 1), away from Redis: those shares are held back.
-- Times are Redis's clock, the same for every replica.
-- Returns {1, now, free, epoch}: taken at now (ms since the epoch), with free more slots
-- left in every window; {0, wait, 0, epoch}: none free for wait ms.
if redis.replicate_commands then
  redis.replicate_commands()
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local replicas = tonumber(ARGV[5])
local alive = tonumber(ARGV[6])
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - alive)
redis.call('PEXPIRE', KEYS[2], 2 * alive)
local missing = replicas - redis.call('ZCARD', KEYS[2])
if missing < 0 then
  missing = 0
end
local flight = KEYS[3]
local hold = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)

local windows = #KEYS - 3
local wait = 0
local free = nil
for j = 1, windows do
  local key = KEYS[3 + j]
  local limit = tonumber(ARGV[5 + 2 * j])
  local length = tonumber(ARGV[6 + 2 * j])
  local share = math.max(1, math.floor(limit / replicas))
  limit = math.max(1, limit - missing * share)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local used = redis.call('ZCARD', key)
  if free == nil or limit - used - 1 < free then
    free = limit - used - 1
  end
  if used >= limit then
    -- With a lowered limit, enough older slots must leave for the count to fall below it.
    local first = redis.call('ZRANGE', key, used - limit, used - limit, 'WITHSCORES')
    local free_in = length
    if first[1] and not redis.call('ZSCORE', flight, first[1]) then
      free_in = tonumber(first[2]) - now
    end
    -- (One in flight frees a window after its answer at the soonest: ask again then.)
    if free_in > wait then
      wait = free_in
    end
  end
end
if wait > 0 then
  return {0, math.ceil(wait), 0, epoch}
end

-- Keeps `key` at least until `until_ms`.
local function keep(key, until_ms)
  if redis.call('PTTL', key) < until_ms - now then
    redis.call('PEXPIRE', key, until_ms - now)
  end
end
redis.call('ZADD', flight, now + hold, ARGV[2])
keep(flight, now + hold)
for j = 1, windows do
  local key = KEYS[3 + j]
  -- In flight the slot counts until its hold ends plus a window, so the slot of a replica
  -- killed mid-request frees itself; its answer rewrites this.
  local leaves = now + hold + tonumber(ARGV[6 + 2 * j])
  redis.call('ZADD', key, leaves, ARGV[2])
  keep(key, leaves)
end
return {1, now, free, epoch}
