-- extend.lua: move the lease deadline of groups still leased to now + lease_ms
-- (needs leases.lua).
--
-- A lease that ran out but was not reclaimed yet is still held: nobody else can
-- have received the item, because reclaiming happens inside pop.lua.
--
-- KEYS[1]   leased    ZSET of lease group ids, score = lease deadline (ms, server clock)
-- ARGV[1]   lease_ms  new lease length from now
-- ARGV[2..] receipts of the items whose leases to extend, packed as for ack.lua
--
-- Returns how many of those items were still leased.

local leased = KEYS[1]
-- Formatted once: Redis would otherwise format the number again for every group.
local deadline = string.format('%d', now_ms() + tonumber(ARGV[1]))
local groups, order, runs = receipts_by_group(2)
local held = 0
for _, gid in ipairs(order) do
    if redis.call('ZSCORE', leased, gid) then
        redis.call('ZADD', leased, 'XX', deadline, gid)
        local key = group_key(leased, gid)
        local size = redis.call('LLEN', key)
        local done = redis.call('GET', done_key(leased, gid)) or ''
        local counted = {} -- a position may come both in a run and alone
        local function count(position)
            if position < size and not counted[position] and not is_done(done, position) then
                counted[position] = true
                held = held + 1
            end
        end
        for _, position in ipairs(groups[gid]) do
            count(position)
        end
        for _, run in ipairs(runs[gid]) do
            for position = run[1], math.min(run[1] + run[2], size) - 1 do
                count(position)
            end
        end
    end
end
return held
