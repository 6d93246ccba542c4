-- purge_dead.lua: delete a queue's dead-letter list.
--
-- KEYS[1]  dead  LIST of encoded dead letters
--
-- Returns how many dead letters were deleted.

local deleted = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return deleted
