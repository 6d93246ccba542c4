-- dead_letter.lua: append dead letters and acknowledge leases in one step (needs leases.lua).
--
-- KEYS[1]   dead     LIST of encoded dead letters, oldest first (layout in requeue_dead.lua)
-- KEYS[2]   leased   ZSET of lease group ids, score = lease deadline
-- ARGV[1]   n        how many of the following arguments are dead letters
-- ARGV[2 .. n+1]     encoded dead letters to append
-- ARGV[n+2 ..]       receipts of the leases to acknowledge, packed as for ack.lua
--
-- Returns how many leases were still held.

local dead, leased = KEYS[1], KEYS[2]
local letters = tonumber(ARGV[1])
for i = 2, letters + 1, CHUNK do
    redis.call('RPUSH', dead, unpack(ARGV, i, math.min(i + CHUNK - 1, letters + 1)))
end
return acknowledge(leased, letters + 2)
