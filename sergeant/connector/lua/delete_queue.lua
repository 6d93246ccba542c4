-- delete_queue.lua: delete a queue's ready, delayed and leased items (needs leases.lua).
--
-- KEYS[1]  ready    LIST of stored items
-- KEYS[2]  delayed  ZSET of delayed members
-- KEYS[3]  leased   ZSET of lease group ids
--
-- Returns how many of the three keys existed.

local ready, delayed, leased = KEYS[1], KEYS[2], KEYS[3]
for _, gid in ipairs(redis.call('ZRANGE', leased, 0, -1)) do
    redis.call('DEL', group_key(leased, gid), done_key(leased, gid))
end
return redis.call('DEL', ready, delayed, leased, owners_key(leased))
