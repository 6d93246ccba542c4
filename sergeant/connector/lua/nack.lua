-- nack.lua: hand leased items back to the head of ready without counting a delivery.
--
-- Items go back in the order given, the first one at the head. Only deliveries
-- still leased (exact stored item, so the exact delivery) are handed back.
--
-- KEYS[1]   ready    LIST of stored items (see pop.lua for the item layout)
-- KEYS[2]   leased   ZSET of stored items, score = lease deadline
-- ARGV[1..] stored items to hand back
--
-- Returns how many of them were still leased.

local ready, leased = KEYS[1], KEYS[2]
local handed_back = 0
for i = #ARGV, 1, -1 do
    if redis.call('ZREM', leased, ARGV[i]) == 1 then
        redis.call('LPUSH', ready, ARGV[i])
        handed_back = handed_back + 1
    end
end
return handed_back
