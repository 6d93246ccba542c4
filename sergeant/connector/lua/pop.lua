-- pop.lua: one consumer round trip on one queue of one node.
--
-- In order: acknowledge the given deliveries, move due delayed items to ready,
-- hand a bounded number of expired leases back to the head of ready with their
-- delivery counter + 1, then pop up to COUNT items from the head of ready and
-- lease them (or, at-most-once, just return them: popping deleted them).
--
-- A stored item is 16 random id bytes, a 4-byte big-endian delivery counter, then
-- the payload. A delayed member is one priority byte ('H' or 'N') then a stored item.
-- Times are integer milliseconds of this server's clock.
--
-- KEYS[1]   ready     LIST of stored items, popped from the head
-- KEYS[2]   delayed   ZSET of delayed members, score = time they become ready
-- KEYS[3]   leased    ZSET of stored items, score = lease deadline
-- ARGV[1]   count     how many items to pop; 0 only acknowledges and does upkeep
-- ARGV[2]   lease_ms  lease length; negative means at-most-once (no lease)
-- ARGV[3]   batch     the most delayed items to promote, and expired leases to reclaim
-- ARGV[4..] stored items whose leases are acknowledged first
--
-- Returns the popped stored items, head first.

-- Lua's unpack() fails beyond ~8000 values, so variadic commands go in chunks.
local CHUNK = 1000
local HIGH = string.byte('H')

local function now_ms()
    local time = redis.call('TIME')
    return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function call_chunked(command, key, values, first)
    for i = first, #values, CHUNK do
        redis.call(command, key, unpack(values, i, math.min(i + CHUNK - 1, #values)))
    end
end

-- Pushes items to the head so that items[1] ends up first.
local function push_to_head(key, items)
    local reversed = {}
    for i = #items, 1, -1 do
        reversed[#reversed + 1] = items[i]
    end
    call_chunked('LPUSH', key, reversed, 1)
end

local function promote_delayed(ready, delayed, now, batch)
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, batch)
    if #due == 0 then
        return
    end
    call_chunked('ZREM', delayed, due, 1)
    local high, normal = {}, {}
    for _, member in ipairs(due) do
        if string.byte(member, 1) == HIGH then
            high[#high + 1] = string.sub(member, 2)
        else
            normal[#normal + 1] = string.sub(member, 2)
        end
    end
    call_chunked('RPUSH', ready, normal, 1)
    push_to_head(ready, high)
end

local function reclaim_expired(ready, leased, now, batch)
    local expired = redis.call('ZRANGEBYSCORE', leased, '-inf', now, 'LIMIT', 0, batch)
    if #expired == 0 then
        return
    end
    call_chunked('ZREM', leased, expired, 1)
    local again = {}
    for i, item in ipairs(expired) do
        local deliveries = struct.unpack('>I4', item, 17)
        again[i] = string.sub(item, 1, 16) .. struct.pack('>I4', deliveries + 1) .. string.sub(item, 21)
    end
    push_to_head(ready, again)
end

local function lease(leased, items, deadline)
    local args = {}
    for i = 1, #items, CHUNK do
        local last = math.min(i + CHUNK - 1, #items)
        for j = i, last do
            args[2 * (j - i) + 1] = deadline
            args[2 * (j - i) + 2] = items[j]
        end
        redis.call('ZADD', leased, unpack(args, 1, 2 * (last - i + 1)))
    end
end

local ready, delayed, leased = KEYS[1], KEYS[2], KEYS[3]
local count, lease_ms, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

call_chunked('ZREM', leased, ARGV, 4)
local now = now_ms()
promote_delayed(ready, delayed, now, batch)
reclaim_expired(ready, leased, now, batch)
if count <= 0 then
    return {}
end
local items = redis.call('LPOP', ready, count)
if not items then
    return {}
end
if lease_ms >= 0 then
    -- Formatted once: Redis would otherwise format the number again for every item.
    lease(leased, items, string.format('%d', now + lease_ms))
end
return items
