-- pop.lua: one consumer round trip on one queue of one node (needs leases.lua and wake.lua).
--
-- In order: acknowledge the given receipts, move due delayed items to ready,
-- hand the items of a bounded number of expired lease groups back to the head of
-- ready with their delivery counter + 1, then pop up to COUNT items from the head
-- of ready and lease them as one group (or, at-most-once, just return them:
-- popping deleted them).
--
-- A delayed member is one priority byte ('H' or 'N') then a stored item.
-- A stored item is a 16-byte id, a 4-byte big-endian delivery counter, then the payload;
-- an item shorter than that was not written by us and is handed back unchanged.
--
-- KEYS[1]   ready     LIST of stored items, popped from the head
-- KEYS[2]   delayed   ZSET of delayed members, score = time they become ready
-- KEYS[3]   leased    ZSET of lease group ids, score = lease deadline
-- KEYS[4]   wake      LIST of wake tokens (see wake.lua): deleted when ready is found empty
-- ARGV[1]   count     how many items to pop; 0 only acknowledges and does upkeep
-- ARGV[2]   lease_ms  lease length; negative means at-most-once (no lease)
-- ARGV[3]   batch     the most delayed items to promote; a tenth of it (at least one)
--                     is the most expired lease groups to reclaim
-- ARGV[4]   gid       id of the lease group of this pop (see leases.lua)
-- ARGV[5]   owner     the consumer the lease belongs to ('' for none)
-- ARGV[6]   relay     '1' when the consumer was idle and knew of an item falling due: if it
--                     pops items now, it leaves one token on <wake>, so that another idle
--                     consumer pops and learns that due time in its place
-- ARGV[7..] receipts to acknowledge first, several back to back in an argument
--
-- Returns the popped stored items, head first. When it was asked for items and popped
-- none: {ms until the next delayed item or lease falls due} (an integer), or {} when
-- nothing will, so that an idle consumer knows how long it may block on <wake>.

local HIGH = string.byte('H')

-- The score of the first member of a sorted set, or nil when it is empty.
local function first_score(key)
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return first[2] and tonumber(first[2])
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

local function reclaim_expired(ready, leased, now, groups)
    local expired = redis.call('ZRANGEBYSCORE', leased, '-inf', now, 'LIMIT', 0, groups)
    if #expired == 0 then
        return
    end
    local again = {}
    for _, gid in ipairs(expired) do
        for _, item in ipairs(held_items(leased, gid)) do
            if #item < 20 then
                -- not written by us (shorter than id + counter): back as it was; the consumer dead-letters it
                again[#again + 1] = item
            else
                local deliveries = struct.unpack('>I4', item, 17)
                again[#again + 1] = string.sub(item, 1, 16) .. struct.pack('>I4', deliveries + 1) .. string.sub(item, 21)
            end
        end
        delete_group(leased, gid)
    end
    push_to_head(ready, again)
end

local ready, delayed, leased = KEYS[1], KEYS[2], KEYS[3]
local count, lease_ms, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

if #ARGV >= 7 then
    acknowledge(leased, 7)
end
local now = now_ms()
-- the heads first: an idle queue costs two reads, not two range scans
local delayed_head, lease_head = first_score(delayed), first_score(leased)
if delayed_head and delayed_head <= now then
    promote_delayed(ready, delayed, now, batch)
end
if lease_head and lease_head <= now then
    reclaim_expired(ready, leased, now, math.max(1, math.floor(batch / 10)))
end
if count <= 0 then
    return {}
end
local items = redis.call('LPOP', ready, count)
if not items then
    redis.call('DEL', KEYS[4])
    local due = delayed_head
    if lease_head and (not due or lease_head < due) then
        due = lease_head
    end
    if not due then
        return {}
    end
    return {math.max(0, due - now)}
end
if lease_ms >= 0 then
    lease_group(leased, ARGV[4], items, now + lease_ms, ARGV[5])
end
if ARGV[6] == '1' then
    wake_consumers(KEYS[4], 1)
end
return items
