-- requeue_dead.lua: move the oldest dead letters back to the tail of ready as fresh items, and
-- wake idle consumers (needs wake.lua).
--
-- Each payload gets a new id, taken from ARGV[1] (pushed time in ms, then random bytes),
-- and a delivery counter of 1.
-- Moves at most len(ARGV[1]) / 16 letters per call.
--
-- KEYS[1]  dead   LIST of dead letters, oldest first: 8-byte big-endian double failed_at,
--                 4-byte big-endian reason length, UTF-8 reason, payload
-- KEYS[2]  ready  LIST of stored items (see pop.lua for the item layout)
-- KEYS[3]  wake   LIST of wake tokens (see wake.lua)
-- ARGV[1]  ids    16 random bytes per letter to move
--
-- Returns how many letters were moved.

local CHUNK = 1000
local dead, ready, ids = KEYS[1], KEYS[2], ARGV[1]
if #ids < 16 then
    return 0
end
local letters = redis.call('LRANGE', dead, 0, math.floor(#ids / 16) - 1)
if #letters == 0 then
    return 0
end
redis.call('LTRIM', dead, #letters, -1)
local first_delivery = struct.pack('>I4', 1)
local items = {}
for i, letter in ipairs(letters) do
    local payload = string.sub(letter, 13 + struct.unpack('>I4', letter, 9))
    items[i] = string.sub(ids, 16 * i - 15, 16 * i) .. first_delivery .. payload
end
for i = 1, #items, CHUNK do
    redis.call('RPUSH', ready, unpack(items, i, math.min(i + CHUNK - 1, #items)))
end
wake_consumers(KEYS[3], #letters)
return #letters
