-- counts.lua: how many items of one queue are in each state on this node (read only).
--
-- Counts against this server's clock, so that "due" and "expired" agree with pop.lua.
--
-- KEYS[1]  ready    LIST of stored items
-- KEYS[2]  delayed  ZSET of delayed members, score = time they become ready (ms)
-- KEYS[3]  leased   ZSET of stored items, score = lease deadline (ms)
--
-- Returns {ready, delayed items now due, all delayed items, expired leases, all leases}.
-- Due delayed items and expired leases are consumable: the next pop promotes them.

local ready, delayed, leased = KEYS[1], KEYS[2], KEYS[3]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return {
    redis.call('LLEN', ready),
    redis.call('ZCOUNT', delayed, '-inf', now),
    redis.call('ZCARD', delayed),
    redis.call('ZCOUNT', leased, '-inf', now),
    redis.call('ZCARD', leased),
}
