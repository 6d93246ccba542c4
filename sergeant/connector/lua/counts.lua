-- counts.lua: how many items of one queue are in each state on this node (read only;
-- needs leases.lua).
--
-- Counts against this server's clock, so that "due" and "expired" agree with pop.lua.
--
-- KEYS[1]  ready    LIST of stored items
-- KEYS[2]  delayed  ZSET of delayed members, score = time they become ready (ms)
-- KEYS[3]  leased   ZSET of lease group ids, score = lease deadline (ms)
--
-- Returns {ready, delayed items now due, all delayed items, items of expired
-- leases, all leased items}. Due delayed items and expired leases are consumable:
-- the next pop promotes them.

local ready, delayed, leased = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
local expired, all = 0, 0
local groups = redis.call('ZRANGE', leased, 0, -1, 'WITHSCORES')
for i = 1, #groups, 2 do
    local held = held_count(leased, groups[i])
    all = all + held
    if tonumber(groups[i + 1]) <= now then
        expired = expired + held
    end
end
return {
    redis.call('LLEN', ready),
    redis.call('ZCOUNT', delayed, '-inf', now),
    redis.call('ZCARD', delayed),
    expired,
    all,
}
