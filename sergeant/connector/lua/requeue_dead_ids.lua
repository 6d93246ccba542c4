-- requeue_dead_ids.lua: move chosen dead letters back to the tail of ready, each at most once,
-- and wake idle consumers (needs wake.lua).
--
-- Each letter is removed from the dead list (the first equal entry, LREM count 1);
-- only a letter that was still there is pushed, as a fresh item: a letter another
-- caller moved or purged meanwhile is skipped, never pushed twice.
--
-- KEYS[1]   dead   LIST of dead letters, oldest first (layout in requeue_dead.lua)
-- KEYS[2]   ready  LIST of stored items (see pop.lua for the item layout)
-- KEYS[3]   wake   LIST of wake tokens (see wake.lua)
-- ARGV[1]   ids    16 id bytes per letter (pushed time in ms, then random bytes)
-- ARGV[2i]  the i-th encoded dead letter, as read from KEYS[1]
-- ARGV[2i+1] the payload to push for it (its own, or a replacement)
--
-- Returns how many letters were moved.

local CHUNK = 1000
local dead, ready, ids = KEYS[1], KEYS[2], ARGV[1]
local first_delivery = struct.pack('>I4', 1)
local items = {}
for i = 2, #ARGV - 1, 2 do
    if redis.call('LREM', dead, 1, ARGV[i]) == 1 then
        local n = #items + 1
        items[n] = string.sub(ids, 16 * n - 15, 16 * n) .. first_delivery .. ARGV[i + 1]
    end
end
for i = 1, #items, CHUNK do
    redis.call('RPUSH', ready, unpack(items, i, math.min(i + CHUNK - 1, #items)))
end
wake_consumers(KEYS[3], #items)
return #items
