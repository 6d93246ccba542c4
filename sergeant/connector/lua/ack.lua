-- ack.lua: acknowledge leased items (needs leases.lua).
--
-- KEYS[1]   leased   ZSET of lease group ids, score = lease deadline
-- ARGV[1..] receipts, several back to back in an argument (see receipts_by_group)
--
-- Returns how many leases were still held.

return acknowledge(KEYS[1], 1)
