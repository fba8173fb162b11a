-- Claims a notification for delivery, atomically.
-- KEYS[1]: its dedup key.
-- ARGV[1]: the claimer's ticket; ARGV[2]: how long an unsettled claim holds (ms), so the
-- claim of a replica killed mid-delivery frees itself.
-- Returns 0: delivered within the window (a duplicate); 1: being delivered by another
-- claim; 2: ours now.
local held = redis.call('GET', KEYS[1])
if held == 'd' then
  return 0
elseif held then
  return 1
end
redis.call('SET', KEYS[1], 'f:' .. ARGV[1], 'PX', ARGV[2])
return 2
