-- wake.lua: shared function, prepended to the scripts that make items ready or delayed.
--
-- A queue's <wake> LIST holds tokens for idle consumers: a consumer whose pop came
-- back empty blocks on it (BLPOP) instead of polling, and pops once it takes a
-- token. A token carries no data; a stale one costs one empty pop. The list never
-- holds more than WAKE_CAP tokens (one per consumer to wake at once): a push adds
-- tokens only while it is shorter. pop.lua deletes it whenever it finds ready
-- empty, and delete_queue.lua with the queue.
--
-- Returns nothing itself: it only defines the function below.

local WAKE_CAP = 16

-- One token per item in the wake list, as long as it stays within WAKE_CAP.
local function wake_consumers(wake, items)
    local room = WAKE_CAP - redis.call('LLEN', wake)
    local count = math.min(items, room)
    if count <= 0 then
        return
    end
    local tokens = {}
    for i = 1, count do
        tokens[i] = '1'
    end
    redis.call('LPUSH', wake, unpack(tokens))
end
