-- lock_release.lua: delete a lock only when its stored owner token is ours.
--
-- KEYS[1]  lock   STRING holding the owner token, with an expiry
-- ARGV[1]  token  the caller's owner token
--
-- Returns 1 when the lock was released, 0 when another owner (or nobody) held it.

if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
