-- nack.lua: hand leased items back to the head of ready without counting a delivery
-- (needs leases.lua and wake.lua).
--
-- Items go back in the order given, the first one at the head. Only deliveries
-- still leased are handed back.
--
-- KEYS[1]   ready    LIST of stored items
-- KEYS[2]   leased   ZSET of lease group ids, score = lease deadline
-- KEYS[3]   wake     LIST of wake tokens: idle consumers take what comes back
-- ARGV[1..] receipts of the items to hand back
--
-- Returns how many of them were still leased.

local ready, leased, wake = KEYS[1], KEYS[2], KEYS[3]
local back = {}
for _, receipt in ipairs(ARGV) do
    if #receipt == GID_SIZE + 4 then
        local gid = string.sub(receipt, 1, GID_SIZE)
        local position = struct.unpack('>I4', receipt, GID_SIZE + 1) -- (unpack also returns the next offset)
        local _, items = settle_group(leased, gid, {position}, true)
        if items[1] then
            back[#back + 1] = items[1]
        end
    end
end
push_to_head(ready, back)
wake_consumers(wake, #back)
return #back
