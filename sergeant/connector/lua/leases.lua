-- leases.lua: shared functions, prepended to the scripts that hold or settle leases.
--
-- Leases are held per pop, not per item: the items one pop leased form a group,
-- a LIST '<leased>:<gid>' in pop order, and the ZSET <leased> holds the group's
-- id with the lease deadline (ms, server clock). An item leaves its group when it
-- is acknowledged or handed back: its bit in the bitmap '<leased>:<gid>:done' is
-- set (the list never shrinks, so positions stay valid); a group whose items are
-- all done is deleted. Leasing 1,000 items is one RPUSH and one ZADD member, and
-- acknowledging all of them one DEL, instead of 1,000 sorted-set members each way.
--
-- The HASH '<leased>:owners' maps a group id to the owner of its lease (the
-- consumer process that popped it), for groups popped with an owner.
--
-- A receipt is the group id (GID_SIZE bytes) then the item's 0-based position in
-- its group as a 4-byte big-endian integer. Reclaiming an expired group deletes
-- it, so its receipts match nothing afterwards: a receipt names one delivery.
--
-- A stored item is a 16-byte id (when it was pushed, 6 bytes of ms, then 10 random
-- bytes), a 4-byte big-endian delivery counter, then the payload.
--
-- Returns nothing itself: it only defines the functions below, each described
-- where it is defined.

-- Lua's unpack() fails beyond ~8000 values, so variadic commands go in chunks.
local CHUNK = 1000
local GID_SIZE = 16

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

local function group_key(leased, gid)
    return leased .. ':' .. gid
end

local function done_key(leased, gid)
    return leased .. ':' .. gid .. ':done'
end

local function owners_key(leased)
    return leased .. ':owners'
end

local function is_done(done, position)
    local byte = string.byte(done, math.floor(position / 8) + 1)
    return byte ~= nil and bit.band(byte, bit.rshift(128, position % 8)) ~= 0
end

-- Leases items as one new group, owned by owner unless it is ''.
local function lease_group(leased, gid, items, deadline, owner)
    call_chunked('RPUSH', group_key(leased, gid), items, 1)
    redis.call('ZADD', leased, deadline, gid)
    if owner ~= '' then
        redis.call('HSET', owners_key(leased), gid, owner)
    end
end

local function delete_group(leased, gid)
    redis.call('DEL', group_key(leased, gid), done_key(leased, gid))
    redis.call('ZREM', leased, gid)
    redis.call('HDEL', owners_key(leased), gid)
end

-- The receipts ARGV[first..] by group, without duplicates: {gid = {position, ...}}, the gids in
-- order, and {gid = {{first, count}, ...}} for runs. An argument holds either receipts back to
-- back (one argument per receipt costs the client more than the receipt itself), or 'R' then
-- runs: a group id, then its first position and a count (4 bytes each, big-endian), for that
-- many consecutive positions (see redis_receipts.py). Other arguments are ignored.
local function receipts_by_group(first)
    local receipt_size, run_size = GID_SIZE + 4, GID_SIZE + 8
    local groups, order, runs, seen = {}, {}, {}, {}
    local function positions_of(gid)
        local positions = groups[gid]
        if not positions then
            positions = {}
            groups[gid] = positions
            seen[gid] = {}
            runs[gid] = {}
            order[#order + 1] = gid
        end
        return positions
    end
    for i = first, #ARGV do
        local packed = ARGV[i]
        if string.sub(packed, 1, 1) == 'R' and (#packed - 1) % run_size == 0 then
            for offset = 2, #packed, run_size do
                local gid = string.sub(packed, offset, offset + GID_SIZE - 1)
                local start, count = struct.unpack('>I4I4', packed, offset + GID_SIZE)
                positions_of(gid)
                local group_runs = runs[gid]
                group_runs[#group_runs + 1] = {start, count}
            end
        elseif #packed % receipt_size == 0 then
            for offset = 1, #packed, receipt_size do
                local gid = string.sub(packed, offset, offset + GID_SIZE - 1)
                local position = struct.unpack('>I4', packed, offset + GID_SIZE)
                local positions = positions_of(gid)
                if not seen[gid][position] then
                    seen[gid][position] = true
                    positions[#positions + 1] = position
                end
            end
        end
    end
    return groups, order, runs
end

-- The bytes of a string as numbers (string.byte in chunks: unpack's limit).
local function bytes_of(text)
    local bytes = {}
    for i = 1, #text, CHUNK do
        for _, byte in ipairs({string.byte(text, i, math.min(i + CHUNK - 1, #text))}) do
            bytes[#bytes + 1] = byte
        end
    end
    return bytes
end

-- A string of the numbers bytes[1..count] (nil counts as 0).
local function string_of(bytes, count)
    local pieces = {}
    for i = 1, count, CHUNK do
        local chunk = {}
        for j = i, math.min(i + CHUNK - 1, count) do
            chunk[#chunk + 1] = bytes[j] or 0
        end
        pieces[#pieces + 1] = string.char(unpack(chunk))
    end
    return table.concat(pieces)
end

-- Sets the bits of positions and runs (below size) in the bitmap at done, as SETBIT would, in
-- one read and one write; returns how many were not set before.
local function mark_done(done, positions, runs, size)
    local bytes = bytes_of(redis.call('GET', done) or '')
    local length, newly = #bytes, 0
    local function mark(position)
        if position < size then
            local index = math.floor(position / 8) + 1
            local mask = bit.rshift(128, position % 8)
            local byte = bytes[index] or 0
            if bit.band(byte, mask) == 0 then
                bytes[index] = bit.bor(byte, mask)
                newly = newly + 1
                if index > length then
                    length = index
                end
            end
        end
    end
    for _, position in ipairs(positions) do
        mark(position)
    end
    for _, run in ipairs(runs) do
        for position = run[1], math.min(run[1] + run[2], size) - 1 do
            mark(position)
        end
    end
    if newly > 0 then
        redis.call('SET', done, string_of(bytes, length))
    end
    return newly
end

-- Marks positions (and runs, when given) of one group done; returns how many were still held,
-- and the items at those positions when want_items (no runs then). Deletes the group once all
-- are done.
local function settle_group(leased, gid, positions, want_items, runs)
    local key = group_key(leased, gid)
    local size = redis.call('LLEN', key)
    if size == 0 then
        return 0, {}
    end
    runs = runs or {}
    local done = done_key(leased, gid)
    if not want_items and #positions == 0 and #runs == 1 and runs[1][1] == 0 and runs[1][2] == size
        and redis.call('EXISTS', done) == 0 then
        -- the common case: one run over a whole untouched group
        delete_group(leased, gid)
        return size, {}
    end
    if not want_items and #runs == 0 and #positions == size and redis.call('EXISTS', done) == 0 then
        -- the common case: a whole untouched group (positions are distinct and in range)
        local in_range = true
        for _, position in ipairs(positions) do
            if position >= size then
                in_range = false
                break
            end
        end
        if in_range then
            delete_group(leased, gid)
            return size, {}
        end
    end
    local settled, items = 0, {}
    if want_items then
        for _, position in ipairs(positions) do
            if position < size and redis.call('SETBIT', done, position, 1) == 0 then
                settled = settled + 1
                items[#items + 1] = redis.call('LINDEX', key, position)
            end
        end
    else
        settled = mark_done(done, positions, runs, size)
    end
    if redis.call('BITCOUNT', done) >= size then
        delete_group(leased, gid)
    end
    return settled, items
end

-- Acknowledges the receipts ARGV[first..]; returns how many leases were still held.
local function acknowledge(leased, first)
    local groups, order, runs = receipts_by_group(first)
    local acked = 0
    for _, gid in ipairs(order) do
        acked = acked + settle_group(leased, gid, groups[gid], false, runs[gid])
    end
    return acked
end

-- Items of a group not done yet, in pop order.
local function held_items(leased, gid)
    local items = redis.call('LRANGE', group_key(leased, gid), 0, -1)
    local done = redis.call('GET', done_key(leased, gid))
    if not done then
        return items
    end
    local held = {}
    for i, item in ipairs(items) do
        if not is_done(done, i - 1) then
            held[#held + 1] = item
        end
    end
    return held
end

-- How many items of a group are not done yet.
local function held_count(leased, gid)
    local size = redis.call('LLEN', group_key(leased, gid))
    if size == 0 then
        return 0
    end
    return size - redis.call('BITCOUNT', done_key(leased, gid))
end
