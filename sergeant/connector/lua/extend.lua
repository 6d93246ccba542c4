-- extend.lua: move the lease deadline of items still leased to now + lease_ms.
--
-- A lease that ran out but was not reclaimed yet is still held: nobody else can
-- have received the item, because reclaiming happens inside pop.lua.
--
-- KEYS[1]   leased    ZSET of stored items, score = lease deadline (ms, server clock)
-- ARGV[1]   lease_ms  new lease length from now
-- ARGV[2..] stored items whose leases to extend
--
-- Returns how many leases were still held.

-- Lua's unpack() fails beyond ~8000 values, so variadic commands go in chunks.
local CHUNK = 1000
local leased = KEYS[1]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
-- Formatted once: Redis would otherwise format the number again for every item.
local deadline = string.format('%d', now + tonumber(ARGV[1]))
local held = 0
for first = 2, #ARGV, CHUNK do
    local last = math.min(first + CHUNK - 1, #ARGV)
    local scores = redis.call('ZMSCORE', leased, unpack(ARGV, first, last))
    local args = {}
    for i, score in ipairs(scores) do
        if score then
            args[#args + 1] = deadline
            args[#args + 1] = ARGV[first + i - 1]
        end
    end
    if #args > 0 then
        redis.call('ZADD', leased, 'XX', unpack(args))
        held = held + #args / 2
    end
end
return held
