-- delete_queue.lua: delete a queue's ready, delayed and leased items and its wake tokens
-- (needs leases.lua).
--
-- KEYS[1]  ready    LIST of stored items
-- KEYS[2]  delayed  ZSET of delayed members
-- KEYS[3]  leased   ZSET of lease group ids
-- KEYS[4]  wake     LIST of wake tokens (see wake.lua)
--
-- Returns how many of the three keys existed.

local ready, delayed, leased, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
for _, gid in ipairs(redis.call('ZRANGE', leased, 0, -1)) do
    redis.call('DEL', group_key(leased, gid), done_key(leased, gid))
end
redis.call('DEL', wake)
return redis.call('DEL', ready, delayed, leased, owners_key(leased))
