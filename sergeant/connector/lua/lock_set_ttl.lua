-- lock_set_ttl.lua: set a lock's remaining lifetime only when its owner token is ours.
--
-- KEYS[1]  lock   STRING holding the owner token, with an expiry
-- ARGV[1]  token  the caller's owner token
-- ARGV[2]  ttl    new lifetime in seconds
--
-- Returns 1 when the ttl was set, 0 when another owner (or nobody) held the lock.

if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
