-- Settles a claim, atomically.
-- KEYS[1]: the dedup key.
-- ARGV[1]: the claimer's ticket; ARGV[2]: the dedup window (ms), 0 when the delivery failed.
-- Delivered: remembered as delivered for the window, whoever holds the key now (the robot
-- has it; a claim that took over meanwhile is then answered delivered). Failed: freed, but
-- only while the claim is still ours (one that expired may be another's by now).
-- Returns 1 when the claim was still ours, else 0.
local ours = redis.call('GET', KEYS[1]) == 'f:' .. ARGV[1]
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], 'd', 'PX', ARGV[2])
elseif ours then
  redis.call('DEL', KEYS[1])
end
if ours then
  return 1
end
return 0
