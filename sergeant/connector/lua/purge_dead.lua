-- purge_dead.lua: delete a queue's oldest dead letters, or all of them.
--
-- KEYS[1]  dead   LIST of encoded dead letters, oldest first
-- ARGV[1]  count  how many of the oldest to delete; absent: all
--
-- Returns how many dead letters were deleted.

local dead = KEYS[1]
local length = redis.call('LLEN', dead)
if ARGV[1] == nil then
    redis.call('DEL', dead)
    return length
end
local count = math.min(length, tonumber(ARGV[1]))
if count > 0 then
    redis.call('LTRIM', dead, count, -1)
end
return count
