-- switchyard: check and count every limit of one request, atomically (accounting/bucket.rs).
-- KEYS: NB bucket keys, then budget keys.
-- ARGV: NB, then per bucket: limit, cost; then per budget: cap (nano-USD), seconds left.
-- Returns { refused (0 = admitted, else 1-based index), wait seconds, level of each bucket }.
local nb = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local current = {}
local after = {}
local refused = 0
local wait = 0
for i = 1, nb do
  local limit = tonumber(ARGV[2 * i])
  local cost = tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', KEYS[i], 'u', 't')
  local units = tonumber(v[1]) or 0
  local at = tonumber(v[2]) or now
  units = math.max(0, units - math.max(0, now - at) * limit / 60000)
  current[i] = units
  if units + cost <= limit then
    after[i] = units + cost
  else
    after[i] = units
    if refused == 0 then
      refused = i
      wait = (units + cost - limit) * 60 / limit
    end
  end
end
local base = 2 + 2 * nb
if refused == 0 then
  for j = 1, #KEYS - nb do
    local spent = tonumber(redis.call('GET', KEYS[nb + j]) or '0')
    if spent >= tonumber(ARGV[base + 2 * (j - 1)]) then
      refused = nb + j
      wait = tonumber(ARGV[base + 2 * (j - 1) + 1])
      break
    end
  end
end
if refused == 0 then
  for i = 1, nb do
    local limit = tonumber(ARGV[2 * i])
    redis.call('HSET', KEYS[i], 'u', tostring(after[i]), 't', now)
    -- A bucket is empty again after level * 60 s / limit: then it can go.
    redis.call('PEXPIRE', KEYS[i], math.ceil(after[i] * 60000 / limit) + 1000)
  end
end
-- Refused: nothing was counted, so the levels shown are the current ones.
local shown = after
if refused ~= 0 then
  shown = current
end
local out = { tostring(refused), tostring(wait) }
for i = 1, nb do
  out[#out + 1] = tostring(shown[i])
end
return out
