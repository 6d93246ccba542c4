-- owners.lua: how many items each lease owner holds, leases not expired (read only;
-- needs leases.lua).
--
-- KEYS[1]  leased   ZSET of lease group ids, score = lease deadline (ms)
--
-- Returns a flat list {owner, count, owner, count, ...}.

local leased = KEYS[1]
local now = now_ms()
local owners = redis.call('HGETALL', owners_key(leased))
local counts, order = {}, {}
for i = 1, #owners, 2 do
    local deadline = redis.call('ZSCORE', leased, owners[i])
    if deadline and tonumber(deadline) > now then
        local owner = owners[i + 1]
        if not counts[owner] then
            counts[owner] = 0
            order[#order + 1] = owner
        end
        counts[owner] = counts[owner] + held_count(leased, owners[i])
    end
end
local flat = {}
for _, owner in ipairs(order) do
    flat[#flat + 1] = owner
    flat[#flat + 1] = counts[owner]
end
return flat
