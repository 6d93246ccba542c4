-- release_owner.lua: hand back every item an owner still holds, at once (needs leases.lua
-- and wake.lua).
--
-- For a consumer known to be dead, or for a living one that lost the answer of a
-- pop. Its groups are found in the owners hash; the items of those groups not done
-- yet, except the ones to keep, go back to the head of ready in pop order.
-- An item whose receipt is among the started ones had started running: its
-- delivery counter goes up by one, as when a lease expires. The others go back
-- unchanged, as with a nack. Expired groups are left to pop.lua's reclaim.
--
-- KEYS[1]   ready    LIST of stored items
-- KEYS[2]   leased   ZSET of lease group ids, score = lease deadline
-- KEYS[3]   wake     LIST of wake tokens: idle consumers take what comes back
-- ARGV[1]   owner    the consumer
-- ARGV[2]   n        how many receipts of started items follow
-- ARGV[3..] receipts of the n items that had started, then receipts of items to keep
--
-- Returns {uncharged count, charged stored items...}.

local ready, leased, wake, owner = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local started, keep = {}, {}
local last_started = 2 + tonumber(ARGV[2])
for i = 3, #ARGV do
    if i <= last_started then
        started[ARGV[i]] = true
    else
        keep[ARGV[i]] = true
    end
end
local now = now_ms()
local owners = redis.call('HGETALL', owners_key(leased))
local back, charged, uncharged = {}, {}, 0
for i = 1, #owners, 2 do
    local gid = owners[i]
    local deadline = redis.call('ZSCORE', leased, gid)
    if owners[i + 1] == owner and deadline and tonumber(deadline) > now then
        local items = redis.call('LRANGE', group_key(leased, gid), 0, -1)
        local done = redis.call('GET', done_key(leased, gid)) or ''
        local kept = 0
        for position, item in ipairs(items) do
            local receipt = gid .. struct.pack('>I4', position - 1)
            if keep[receipt] and not is_done(done, position - 1) then
                kept = kept + 1
            elseif not is_done(done, position - 1) then
                if #item >= 20 and started[receipt] then
                    local deliveries = struct.unpack('>I4', item, 17)
                    item = string.sub(item, 1, 16) .. struct.pack('>I4', deliveries + 1) .. string.sub(item, 21)
                    charged[#charged + 1] = item
                else
                    uncharged = uncharged + 1
                end
                back[#back + 1] = item
                redis.call('SETBIT', done_key(leased, gid), position - 1, 1)
            end
        end
        if kept == 0 then
            delete_group(leased, gid)
        end
    end
end
push_to_head(ready, back)
wake_consumers(wake, #back)
table.insert(charged, 1, uncharged)
return charged
