-- switchyard: settle finished requests (one or many), atomically.
-- KEYS: NB bucket keys, then budget keys.
-- ARGV: NB, then per bucket: limit, delta (tokens: usage - reservation);
--       then per budget: cost (nano-USD), seconds the key lives.
local nb = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, nb do
  local limit = tonumber(ARGV[2 * i])
  local delta = tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', KEYS[i], 'u', 't')
  local units = tonumber(v[1]) or 0
  local at = tonumber(v[2]) or now
  units = math.max(0, units - math.max(0, now - at) * limit / 60000)
  units = math.max(0, units + delta)
  redis.call('HSET', KEYS[i], 'u', tostring(units), 't', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil(units * 60000 / limit) + 1000)
end
local base = 2 + 2 * nb
for j = 1, #KEYS - nb do
  redis.call('INCRBY', KEYS[nb + j], ARGV[base + 2 * (j - 1)])
  redis.call('EXPIRE', KEYS[nb + j], ARGV[base + 2 * (j - 1) + 1])
end
return nb
