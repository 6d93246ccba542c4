-- release_owner.lua: hand back every item an owner still holds, at once (needs leases.lua).
--
-- For a consumer known to be dead. Its groups are found in the owners hash; the
-- items of those groups not done yet go back to the head of ready in pop order.
-- An item whose receipt is among the started ones had started running: its
-- delivery counter goes up by one, as when a lease expires. The others go back
-- unchanged, as with a nack. Expired groups are left to pop.lua's reclaim.
--
-- KEYS[1]   ready    LIST of stored items
-- KEYS[2]   leased   ZSET of lease group ids, score = lease deadline
-- ARGV[1]   owner    the dead consumer
-- ARGV[2..] receipts of the items that had started
--
-- Returns {uncharged count, charged stored items...}.

local ready, leased, owner = KEYS[1], KEYS[2], ARGV[1]
local started = {}
for i = 2, #ARGV do
    started[ARGV[i]] = true
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
        for position, item in ipairs(items) do
            if not is_done(done, position - 1) then
                if #item >= 20 and started[gid .. struct.pack('>I4', position - 1)] then
                    local deliveries = struct.unpack('>I4', item, 17)
                    item = string.sub(item, 1, 16) .. struct.pack('>I4', deliveries + 1) .. string.sub(item, 21)
                    charged[#charged + 1] = item
                else
                    uncharged = uncharged + 1
                end
                back[#back + 1] = item
            end
        end
        delete_group(leased, gid)
    end
end
push_to_head(ready, back)
table.insert(charged, 1, uncharged)
return charged
