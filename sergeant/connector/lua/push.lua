-- push.lua: add stored items to ready, or to delayed, and wake idle consumers (needs wake.lua).
--
-- KEYS[1]   target   ready (LIST of stored items) or delayed (ZSET of delayed members)
-- KEYS[2]   wake     LIST of wake tokens (see wake.lua)
-- ARGV[1]   where    'head': LPUSH to ready (items given in reverse), 'tail': RPUSH to ready,
--                    otherwise the ready time (ms) of delayed members: ZADD with that score
-- ARGV[2..] stored items, or delayed members (priority byte + stored item); any number
--           (a Redis Cluster client sends a big push in one call), pushed in parts of 1,000:
--           Lua's unpack() fails beyond ~8,000 values. Head pushes come reversed, so the
--           parts, each pushed to the head in turn, keep the batch's order.
--
-- Returns how many items were given.

local target, wake, where = KEYS[1], KEYS[2], ARGV[1]
local items = #ARGV - 1
if items <= 0 then
    return 0
end
if where == 'head' or where == 'tail' then
    local command = where == 'head' and 'LPUSH' or 'RPUSH'
    for first = 2, #ARGV, 1000 do
        redis.call(command, target, unpack(ARGV, first, math.min(first + 999, #ARGV)))
    end
else
    for first = 2, #ARGV, 1000 do
        local members = {}
        for i = first, math.min(first + 999, #ARGV) do
            members[#members + 1] = where
            members[#members + 1] = ARGV[i]
        end
        redis.call('ZADD', target, unpack(members))
    end
end
wake_consumers(wake, items)
return items
