package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts. Every script takes the namespace prefix "{ns}:" as
// ARGV[1] and builds every key it touches from it, so all of them hash to
// the slot of the tag {ns} (TestScriptKeysShareOneSlot checks each key each
// script touches on a real server). KEYS[1] is always a key of the
// namespace, so a Cluster client routes the script to the right node; the
// other keys a script derives from stored values (an owner's IDs, a record's
// previous hash) are in the same slot, which Redis Cluster allows.
//
// Conventions:
//   - A record is read with HMGET of the fields in F; r[1] (the ID) is
//     false when the record does not exist, and then r[16] (cur) is set
//     if the key is a previous hash's alias to the current hash. Field ia
//     (IssuedAt) is false in a record written before it existed.
//   - Instants are integer Unix microseconds (exact in Lua's doubles up to
//     the year 2255); the empty string is the zero instant.
//   - A key of the wrong type or a corrupt record raises an error whose
//     code is APITOKEN_BADKEY, followed by the key in hex and the reason,
//     so the Go side can name the key (redacted) whatever bytes it holds.
//   - Every check precedes the first write, so a refused call writes
//     nothing; index keys are type-checked before writing (Redis does not
//     roll a script back when it fails half-way).

// prelude holds the helpers every script shares.
const prelude = `
local P = ARGV[1]
local F = {'id','k','o','g','c','u','e','l','r','v','p','pe','rl','j','ia','cur'}
local I_ID, I_KIND, I_OWNER, I_ORG, I_CREATED, I_UPDATED, I_EXPIRES, I_USED, I_REVOKED, I_VERSION, I_PREV, I_PREVEXP, I_LIMIT, I_JSON, I_ISSUED, I_CUR = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16
local NF = 15 -- record fields; 'cur' is the only field of a previous-hash alias

local function tohex(s)
  return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end))
end

local function bad(key, why)
  error({err = 'APITOKEN_BADKEY ' .. tohex(key) .. ' ' .. why})
end

-- badmsg returns the bad-key message an error caught by pcall carries, or
-- nil for any other error.
local function badmsg(e)
  if type(e) == 'table' then e = e.err end
  if type(e) == 'string' then
    local i = string.find(e, 'APITOKEN_BADKEY', 1, true)
    if i then return string.sub(e, i) end
  end
  return nil
end

-- guarded runs f. A bad-key error is appended to errs (so one bad record
-- does not stop a batch) and makes it return false; any other error
-- propagates.
local function guarded(errs, f)
  local ok, e = pcall(f)
  if ok then return true end
  local m = badmsg(e)
  if not m then error(e, 0) end
  errs[#errs + 1] = m
  return false
end

-- call is redis.call for a command on key, naming key when it holds the
-- wrong type.
local function call(key, ...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then
    if string.sub(r.err, 1, 9) == 'WRONGTYPE' then bad(key, 'wrong type') end
    error(r)
  end
  return r
end

local function s(v) if v then return v end return '' end

-- num parses an optional integer field of key ('' or false is nil).
local function num(key, v)
  if not v or v == '' then return nil end
  local n = tonumber(v)
  if not n then bad(key, 'corrupt record') end
  return n
end

local function fmt(n) return string.format('%d', n) end

-- rec reads the record at key. It returns nil if there is none, and then
-- as second value the current hash if key is a previous-hash alias.
local function rec(key)
  local r = call(key, 'HMGET', key, unpack(F))
  if not r[I_ID] then
    for i = 2, NF do if r[i] then bad(key, 'corrupt record') end end
    return nil, r[I_CUR]
  end
  if not r[I_CREATED] or not r[I_VERSION] or not r[I_KIND] or not r[I_OWNER] then bad(key, 'corrupt record') end
  num(key, r[I_CREATED]); num(key, r[I_EXPIRES]); num(key, r[I_USED]); num(key, r[I_REVOKED]); num(key, r[I_ISSUED])
  return r
end

-- need_zsets checks that every key given is a sorted set or missing.
local function need_zsets(...)
  for _, k in ipairs({...}) do
    local t = redis.call('TYPE', k)
    t = t.ok or t
    if t ~= 'zset' and t ~= 'none' then bad(k, 'wrong type') end
  end
end

-- IX is the hash of index back-references: ID -> kind, owner and org of
-- a token whose keys carry an EXPIREAT, so that Prune can clean the
-- indexes of a token Redis has dropped. need_ix checks its type.
local IX = P .. 'ix'
local function need_ix()
  local t = redis.call('TYPE', IX)
  t = t.ok or t
  if t ~= 'hash' and t ~= 'none' then bad(IX, 'wrong type') end
end

-- backref encodes r's kind, owner and org for IX; unbackref decodes one
-- (nil if it cannot).
local function backref(r)
  return s(r[I_KIND]) .. ' ' .. #s(r[I_OWNER]) .. ' ' .. s(r[I_OWNER]) .. s(r[I_ORG])
end
local function unbackref(v)
  local kind, n, rest = string.match(v, '^(%d+) (%d+) (.*)$')
  n = tonumber(n)
  if not n or n > #rest then return nil end
  return kind, string.sub(rest, 1, n), string.sub(rest, n + 1)
end

local NEVER = -9007199254740992

local function active(key, r)
  local c, l = num(key, r[I_CREATED]) or NEVER, num(key, r[I_USED])
  if l and l > c then return l end
  return c
end

local function ended(key, r)
  local e, v = num(key, r[I_EXPIRES]), num(key, r[I_REVOKED])
  if e and v then return math.min(e, v) end
  return e or v
end

-- owner_key is the index of an owner's IDs: an owner is a kind and an ID
-- (user "42" and org "42" are different owners). legacy_owner_key is the
-- index of the layout before owner kinds, one per owner ID whatever the
-- kind; no script adds to it, and adopt empties it (see there).
local function owner_key(kind, owner) return P .. 'ow:' .. s(kind) .. ':' .. s(owner) end
local function legacy_owner_key(owner) return P .. 'o:' .. s(owner) end

local function index_keys(r)
  return P .. 'ids', owner_key(r[I_KIND], r[I_OWNER]), legacy_owner_key(r[I_OWNER]), P .. 'g:' .. s(r[I_ORG]),
    P .. 'k:' .. s(r[I_KIND]), P .. 'lu', P .. 'end'
end

-- adopt moves the IDs of the legacy owner index of owner (written before
-- owners had kinds) into the index of each one's owner, kind and ID, and
-- drops those whose token is gone or belongs to another owner, so a token
-- indexed in the old layout stays reachable by List, RevokeAll and the
-- per-owner bound. It costs one EXISTS once the legacy key is gone. With
-- errs, a bad record is reported there and its ID left in place; without,
-- it raises the error.
local function adopt(owner, errs)
  local lk = legacy_owner_key(owner)
  if redis.call('EXISTS', lk) == 0 then return end
  for _, id in ipairs(call(lk, 'ZRANGE', lk, 0, -1)) do
    local function move()
      local ik = P .. 'i:' .. id
      local cur = call(ik, 'GET', ik)
      local r = cur and rec(P .. 'h:' .. cur)
      if r and r[I_OWNER] == owner then
        local nk = owner_key(r[I_KIND], owner)
        need_zsets(nk)
        redis.call('ZADD', nk, 0, id)
      end
      redis.call('ZREM', lk, id)
    end
    if errs then guarded(errs, move) else move() end
  end
end

-- index adds the record r (at key) to every index.
local function index(key, r)
  local id = r[I_ID]
  redis.call('ZADD', P .. 'ids', 0, id)
  redis.call('ZADD', owner_key(r[I_KIND], r[I_OWNER]), 0, id)
  redis.call('ZREM', legacy_owner_key(r[I_OWNER]), id)
  redis.call('ZADD', P .. 'g:' .. s(r[I_ORG]), 0, id)
  redis.call('ZADD', P .. 'k:' .. r[I_KIND], 0, id)
  redis.call('ZADD', P .. 'lu', fmt(active(key, r)), id)
  local en = ended(key, r)
  if en then redis.call('ZADD', P .. 'end', fmt(en), id) else redis.call('ZREM', P .. 'end', id) end
end

-- unindex removes the record r from every index.
local function unindex(r)
  local id = r[I_ID]
  for _, k in ipairs({index_keys(r)}) do redis.call('ZREM', k, id) end
end

-- expire sets (or clears) the backstop expiry of a token's keys: its end
-- plus the retention ARGV[ret] in milliseconds (0: never). An instant
-- already past is left to Prune, so no key vanishes during a script.
local function expire(key, r, ret, ...)
  local keys = {key, ...}
  local ms = tonumber(ARGV[ret])
  local en = ended(key, r)
  local at = nil
  if ms > 0 and en then
    at = math.floor(en / 1000) + ms
    local t = redis.call('TIME')
    if at <= tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then at = nil end
  end
  for _, k in ipairs(keys) do
    if at then redis.call('PEXPIREAT', k, fmt(at)) else redis.call('PERSIST', k) end
  end
  if at then redis.call('HSET', IX, r[I_ID], backref(r)) else redis.call('HDEL', IX, r[I_ID]) end
end

-- put writes record r at KEYS[2] (the key of its hash), points the ID
-- index KEYS[1] at that hash and the previous-hash alias KEYS[3] (if any)
-- at it too, indexes r and sets the backstop expiry (retention
-- ARGV[NF + 3]). Shared by create and update.
local function put(r)
  local hash = string.sub(KEYS[2], #P + 3)
  local args = {}
  for i = 1, NF do
    args[#args + 1] = F[i]
    args[#args + 1] = r[i]
  end
  redis.call('HSET', KEYS[2], unpack(args))
  redis.call('SET', KEYS[1], hash)
  if #KEYS > 2 then redis.call('HSET', KEYS[3], 'cur', hash) end
  index(KEYS[2], r)
  expire(KEYS[2], r, NF + 3, KEYS[1], KEYS[3])
end

-- drop deletes the token id whose record r is at key, with its index
-- entries and aliases.
local function drop(key, r)
  need_zsets(index_keys(r))
  need_ix()
  unindex(r)
  redis.call('HDEL', IX, r[I_ID])
  redis.call('DEL', key, P .. 'i:' .. r[I_ID])
  if s(r[I_PREV]) ~= '' then redis.call('DEL', P .. 'h:' .. r[I_PREV]) end
end

-- find returns the record the hash of KEYS[1] (its record key) names, that
-- key, and '' (found by its hash) or the current hash (found by a previous
-- hash, through the alias at KEYS[1]); nil if none.
local function find()
  local r, cur = rec(KEYS[1])
  if r then return r, KEYS[1], '' end
  if not cur then return nil end
  local key = P .. 'h:' .. cur
  r = rec(key)
  if not r or r[I_PREV] ~= string.sub(KEYS[1], #P + 3) then return nil end
  return r, key, cur
end

-- reply flattens a found record for the Go side: {via, fields...}.
local function reply(via, r)
  local out = {via}
  for i = 1, NF do out[i + 1] = s(r[i]) end
  return out
end

-- limiter_now returns the rate limiter's now in µs: Redis server TIME plus
-- off, the test offset of WithTimeOffset (µs, as a string; "0" unless set).
local function limiter_now(off)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(off)
end

-- gcra takes one request from the budget at key under rate (per second)
-- and burst, at limiter_now(off), and returns {allowed, remaining, reset
-- µs, retry-after µs}.
local function gcra(key, rate, burst, off)
  local T = 1000000 / rate
  local tol = T * burst
  local now = limiter_now(off)
  local v = call(key, 'GET', key)
  local tat = now
  if v then
    tat = tonumber(v)
    if not tat then bad(key, 'corrupt budget') end
    if tat < now then tat = now end
  end
  local new = tat + T
  local allow_at = new - tol
  if now < allow_at then
    return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
  end
  redis.call('SET', key, string.format('%.17g', new), 'PX', fmt(math.ceil((new - now) / 1000) + 1))
  local rem = math.floor((now - allow_at) / T + 1e-9)
  return {1, rem, math.ceil(new - now), 0}
end

local function check_limit(key, rate, burst)
  if rate == nil or burst == nil or rate ~= rate or burst ~= burst then bad(key, 'corrupt rate limit') end
  if rate == 0 and burst == 0 then return false end
  if not (rate > 0 and rate < math.huge and burst >= 1) then bad(key, 'invalid rate limit') end
  return true
end
`

// scriptGet: KEYS[1] = i:<id>. Returns {via, fields...} or nil.
var scriptGet = newScript(`
local cur = call(KEYS[1], 'GET', KEYS[1])
if not cur then return false end
local key = P .. 'h:' .. cur
local r = rec(key)
if not r then return false end
return reply(cur, r)
`)

// scriptLookupAllow (GetByHashAllow, the diagnosing version of
// fastLookupAllow, run when that fails): same KEYS, ARGV and reply. It
// either gives the answer fastLookupAllow would have given or names the
// bad key.
var scriptLookupAllow = newOOMScript(limitFor + `
if redis.replicate_commands then redis.replicate_commands() end
local r, key, via = find()
if not r then return false end
local out = {}
for i = 1, NF do out[i] = s(r[i]) end
out[NF + 1] = via ~= '' and via
local now = tonumber(ARGV[2])
local exp = num(key, r[I_EXPIRES])
local live = s(r[I_REVOKED]) == '' and (exp == nil or now < exp)
if live and via ~= '' then
  local pe = num(key, r[I_PREVEXP])
  live = pe ~= nil and now < pe
end
if not live then return out end
local ok, bkey, rate, burst = pcall(limit_for, P, out)
if not ok then bad(key, 'corrupt record') end
rate, burst = tonumber(rate), tonumber(burst)
if not check_limit(key, rate, burst) then return out end
local d = gcra(bkey, rate, burst, ARGV[7])
for i = 1, 4 do out[#out + 1] = d[i] end
return out
`)

// scriptAllow (Limiter.Allow): KEYS[1] = rl:<key>, ARGV[2..3] = rate and
// burst, ARGV[4] = the time offset (µs). Returns the GCRA decision.
var scriptAllow = newOOMScript(`
if redis.replicate_commands then redis.replicate_commands() end
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
check_limit(KEYS[1], rate, burst)
return gcra(KEYS[1], rate, burst, ARGV[4])
`)

// scriptRefund (Refund): KEYS[1] = rl:<key>, ARGV[2..3] = rate and burst,
// ARGV[4] = the time offset (µs). Gives one request back to the budget: its
// theoretical arrival time moves back by one emission interval, on the
// limiter's clock (Redis server time plus the offset), never below now (a
// budget back at full is deleted, as one never charged). A budget with no
// state is left alone. Returns 1 if it gave a request back, else 0.
var scriptRefund = newOOMScript(`
if redis.replicate_commands then redis.replicate_commands() end
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
if not check_limit(KEYS[1], rate, burst) then return 0 end
local v = call(KEYS[1], 'GET', KEYS[1])
if not v then return 0 end
local tat = tonumber(v)
if not tat then bad(KEYS[1], 'corrupt budget') end
local now = limiter_now(ARGV[4])
local new = tat - 1000000 / rate
if new <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.17g', new), 'PX', fmt(math.ceil((new - now) / 1000) + 1))
end
return 1
`)

// limitFor is the Lua twin of [apitoken.LimitDefaults.LimitFor], shared
// by fastLookupAllow and scriptLookupAllow: limit_for(P, r) returns the
// budget key of the record r (fields in F order) and the rate and burst
// that apply to it, as strings: a user token's user budget under the
// user default ARGV[5..6]; an org token's own budget under its override
// (field rl), else the highest-rate limit among its roles' limits
// (ARGV[8..]: triples of role, rate, burst), else the org default
// ARGV[3..4]. The roles are in the record's JSON (field j), which is
// decoded only when the policy has role limits and the JSON has roles. It
// raises a Lua error on a record it cannot read.
const limitFor = `
local function limit_for(P, r)
  if r[2] == '1' then return P .. 'rl:user:' .. r[3], ARGV[5], ARGV[6] end
  local bkey = P .. 'rl:token:' .. r[1]
  if r[13] ~= '' then
    local rate, burst = string.match(r[13], '^(%S+) (%S+)$')
    if not rate then error('bad rate limit') end
    return bkey, rate, burst
  end
  local rate, burst = ARGV[3], ARGV[4]
  if #ARGV > 7 and string.find(r[14], '"r":[', 1, true) then
    local roles = cjson.decode(r[14]).r
    local best = nil
    for _, name in ipairs(type(roles) == 'table' and roles or {}) do
      for i = 8, #ARGV, 3 do
        if ARGV[i] == name then
          local x = tonumber(ARGV[i + 1])
          if not best or x > best then best, rate, burst = x, ARGV[i + 1], ARGV[i + 2] end
          break
        end
      end
    end
  end
  return bkey, rate, burst
end
`

// fastTake is the GCRA step of the fast scripts (which skip the prelude):
// take(key, rate, burst, off) charges one request to the budget at key on
// Redis server time plus off (the time offset, µs) and returns allowed
// (0/1), remaining, µs until full and µs until retry, or nil if the key
// holds something that is not a TAT.
const fastTake = `
local function take(key, rate, burst, off)
  local T = 1000000 / rate
  local t = redis.call('TIME')
  local o = tonumber(off)
  local now = t[1] * 1000000 + t[2] + o
  local v = redis.call('GET', key)
  local tat = now
  if v then
    tat = tonumber(v)
    if not tat then return nil end
    if tat < now then tat = now end
  end
  local new = tat + T
  local allow_at = new - T * burst
  if now < allow_at then
    return 0, 0, math.ceil(tat - now), math.ceil(allow_at - now)
  end
  redis.call('SET', key, string.format('%.17g', new), 'PXAT', string.format('%d', math.ceil((new - o) / 1000) + 1))
  return 1, math.floor((now - allow_at) / T + 1e-9), math.ceil(new - now), 0
end
`

// fastLookupAllow is the hot path of GetByHashAllow: one HMGET of the
// record and the GCRA step, without the shared helpers (whose set-up alone
// costs more than the lookup). KEYS[1] = h:<hash>, ARGV[2] = now (µs, for
// the revoked / expired check), ARGV[3..4] = default org rate and burst,
// ARGV[5..6] = default user rate and burst, ARGV[7] = the time offset (µs),
// ARGV[8..] = role limits (see limitFor).
//
// The reply is the plain lookup's: the record's fields in F order, as
// GetByHash's HMGET returns them (so one decoder serves both), with
// field 16 (cur) set to the current hash when KEYS[1] is a previous hash
// in its grace period; then, when a budget was charged, the GCRA decision
// (allowed, remaining, µs until full, µs until retry). Nil if there is no
// such token. A budget is charged only for a record that is neither
// revoked nor expired at ARGV[2] (nor, found by a previous hash, past its
// grace), in the same atomic step as the lookup.
//
// Whatever it cannot handle (a key of the wrong type, a corrupt or
// half-written record or budget, a stale alias) makes it fail before it
// writes anything; the Store then runs scriptLookupAllow, which names the
// bad key or gives the answer.
var fastLookupAllow = redis.NewScript(allowOOM + fastTake + limitFor + `
if redis.replicate_commands then redis.replicate_commands() end
local P = ARGV[1]
local r = redis.call('HMGET', KEYS[1], 'id','k','o','g','c','u','e','l','r','v','p','pe','rl','j','ia','cur')
local now = tonumber(ARGV[2])
if r[1] then
  r[16] = false
else
  local via = r[16]
  if not via then
    for i = 2, 15 do if r[i] then return redis.error_reply('APITOKEN_SLOW') end end
    return false
  end
  r = redis.call('HMGET', P .. 'h:' .. via, 'id','k','o','g','c','u','e','l','r','v','p','pe','rl','j','ia')
  if not r[1] or r[11] ~= string.sub(KEYS[1], #P + 3) then return redis.error_reply('APITOKEN_SLOW') end
  r[16] = via
  if r[12] == '' or now >= tonumber(r[12]) then return r end
end
if r[9] ~= '' or (r[7] ~= '' and now >= tonumber(r[7])) then return r end
local bkey, rate, burst = limit_for(P, r)
rate, burst = tonumber(rate), tonumber(burst)
if rate == 0 and burst == 0 then return r end
if not (rate > 0 and rate < math.huge and burst >= 1) then return redis.error_reply('APITOKEN_SLOW') end
local a, b, c, d = take(bkey, rate, burst, ARGV[7])
if not a then return redis.error_reply('APITOKEN_SLOW') end
r[17], r[18], r[19], r[20] = a, b, c, d
return r
`)

// fastAllow is the hot path of Allow, as fastLookupAllow is of
// GetByHashAllow; scriptAllow is its diagnosing version. The caller has
// checked the limit.
var fastAllow = redis.NewScript(allowOOM + fastTake + `
if redis.replicate_commands then redis.replicate_commands() end
local a, b, c, d = take(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
if not a then return redis.error_reply('APITOKEN_SLOW') end
return {a, b, c, d}
`)

// scriptCreate: KEYS[1] = i:<id>, KEYS[2] = h:<hash>, and with a previous
// hash KEYS[3] = h:<prev> (which becomes an alias: a HASH whose only field,
// cur, holds the current hash).
// ARGV[2..16] = the record fields in F order, ARGV[17] = maxPerOwner,
// ARGV[18] = retention ms. Returns 0 (created), 1 (duplicate ID),
// 2 (duplicate hash) or 3 (too many tokens). The bound counts the live
// tokens of the owner's kind and ID.
var scriptCreate = newScript(`
if redis.replicate_commands then redis.replicate_commands() end
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 2 end
end
local r = {}
for i = 1, NF do r[i] = ARGV[i + 1] end
need_zsets(index_keys(r))
need_ix()
local max = tonumber(ARGV[NF + 2])
if max > 0 then
  adopt(r[I_OWNER])
  local okey = owner_key(r[I_KIND], r[I_OWNER])
  local at = tonumber(r[I_CREATED]) or NEVER
  local live = 0
  for _, id in ipairs(redis.call('ZRANGE', okey, 0, -1)) do
    local ik = P .. 'i:' .. id
    local cur = call(ik, 'GET', ik)
    local o = cur and rec(P .. 'h:' .. cur)
    if not o or o[I_OWNER] ~= r[I_OWNER] or o[I_KIND] ~= r[I_KIND] then
      redis.call('ZREM', okey, id)
    elseif s(o[I_REVOKED]) == '' then
      local e = num(P .. 'h:' .. cur, o[I_EXPIRES])
      if e == nil or at < e then live = live + 1 end
    end
  end
  if live >= max then return 3 end
end
put(r)
return 0
`)

// scriptUpdate: KEYS as scriptCreate, for the new hashes. ARGV[2..16] = the
// new record fields in F order (I_VERSION holds the new version),
// ARGV[17] = the expected stored version, ARGV[18] = retention ms.
// Returns 0 (updated), 1 (not found), 2 (stale version) or 3 (a hash held
// by another token).
var scriptUpdate = newScript(`
if redis.replicate_commands then redis.replicate_commands() end
local cur = call(KEYS[1], 'GET', KEYS[1])
if not cur then return 1 end
local ckey = P .. 'h:' .. cur
local old = rec(ckey)
if not old then return 1 end
if old[I_VERSION] ~= ARGV[NF + 2] then return 2 end
for i = 2, #KEYS do
  if string.sub(KEYS[i], #P + 3) ~= cur then
    local a = call(KEYS[i], 'HMGET', KEYS[i], 'id', 'cur')
    if a[1] or (a[2] and a[2] ~= cur) then return 3 end
  end
end
local r = {}
for i = 1, NF do r[i] = ARGV[i + 1] end
need_zsets(index_keys(old))
need_zsets(index_keys(r))
need_ix()
-- LastUsedAt stays monotone.
local l, ol = num(ckey, r[I_USED]), num(ckey, old[I_USED])
if ol and (l == nil or ol > l) then r[I_USED] = old[I_USED] end
unindex(old)
if s(old[I_PREV]) ~= '' then redis.call('DEL', P .. 'h:' .. old[I_PREV]) end
redis.call('DEL', ckey)
put(r)
return 0
`)

// revokeOne is shared by scriptRevoke and scriptRevokeAll: it revokes the
// record r at key at ARGV[2] (µs) unless it is revoked already, and
// reports whether it did.
const revokeOne = `
local function revoke(key, r)
  if s(r[I_REVOKED]) ~= '' then return false end
  need_zsets(P .. 'end')
  need_ix()
  redis.call('HSET', key, 'r', ARGV[2], 'u', ARGV[2])
  redis.call('HINCRBY', key, 'v', 1)
  r[I_REVOKED] = ARGV[2]
  local en = ended(key, r)
  redis.call('ZADD', P .. 'end', fmt(en), r[I_ID])
  if s(r[I_PREV]) ~= '' then
    expire(key, r, 3, P .. 'i:' .. r[I_ID], P .. 'h:' .. r[I_PREV])
  else
    expire(key, r, 3, P .. 'i:' .. r[I_ID])
  end
  return true
end
`

// scriptRevoke: KEYS[1] = i:<id>, ARGV[2] = at (µs), ARGV[3] = retention
// ms. Returns 0 (revoked, or revoked already) or 1 (not found).
var scriptRevoke = newOOMScript(revokeOne + `
if redis.replicate_commands then redis.replicate_commands() end
local cur = call(KEYS[1], 'GET', KEYS[1])
if not cur then return 1 end
local key = P .. 'h:' .. cur
local r = rec(key)
if not r then return 1 end
revoke(key, r)
return 0
`)

// scriptRevokeAll: KEYS[1] = ow:<kind>:<owner>, ARGV[2] = at (µs),
// ARGV[3] = retention ms, ARGV[4] = the owner ID, ARGV[5] = its kind.
// Revokes every token of the owner (kind and ID) it can read, and returns
// {count, bad key errors...}: a bad record does not keep the others from
// being revoked.
var scriptRevokeAll = newOOMScript(revokeOne + `
if redis.replicate_commands then redis.replicate_commands() end
local n, errs = 0, {}
adopt(ARGV[4], errs)
for _, id in ipairs(call(KEYS[1], 'ZRANGE', KEYS[1], 0, -1)) do
  guarded(errs, function()
    local ik = P .. 'i:' .. id
    local cur = call(ik, 'GET', ik)
    local key = cur and P .. 'h:' .. cur
    local r = key and rec(key)
    if not r then
      redis.call('ZREM', KEYS[1], id)
    elseif r[I_OWNER] == ARGV[4] and r[I_KIND] == ARGV[5] and revoke(key, r) then
      n = n + 1
    end
  end)
end
local out = {n}
for _, e in ipairs(errs) do out[#out + 1] = e end
return out
`)

// scriptDelete: KEYS[1] = i:<id>. Returns 0 (deleted) or 1 (not found).
var scriptDelete = newScript(`
local cur = call(KEYS[1], 'GET', KEYS[1])
if not cur then return 1 end
local key = P .. 'h:' .. cur
local r = rec(key)
if not r then
  redis.call('DEL', KEYS[1])
  return 1
end
drop(key, r)
return 0
`)

// scriptList: KEYS[1] = the index to walk (ids, ow:<kind>:<owner>, g:<org>
// or k:<kind>), ARGV[2] = the ID to continue after (” from the start),
// ARGV[3] = page size, ARGV[4..6] = owner, org and kind filters (” for
// any), ARGV[7] = the most index entries to look at. Returns {status,
// last ID looked at, then hash and fields of each token}, where status is
// 'end' (index exhausted), 'more' (page full, more entries follow), 'full'
// (page full, none follow) or 'budget' (look-at budget spent: call again
// after the last ID).
var scriptList = newScript(`
local size, budget = tonumber(ARGV[3]), tonumber(ARGV[7])
local last, n, seen = ARGV[2], 0, 0
local out = {'end', ''}
local function matches(r)
  return (ARGV[4] == '' or r[I_OWNER] == ARGV[4]) and (ARGV[5] == '' or s(r[I_ORG]) == ARGV[5]) and (ARGV[6] == '' or r[I_KIND] == ARGV[6])
end
if ARGV[4] ~= '' then adopt(ARGV[4]) end
local status = nil
while not status do
  local from = '-'
  if last ~= '' then from = '(' .. last end
  local ids = call(KEYS[1], 'ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, math.min(100, budget - seen))
  if #ids == 0 then status = 'end' end
  for _, id in ipairs(ids) do
    seen = seen + 1
    last = id
    local ik = P .. 'i:' .. id
    local cur = call(ik, 'GET', ik)
    local key = cur and P .. 'h:' .. cur
    local r = key and rec(key)
    if not cur then
      redis.call('ZREM', KEYS[1], id)
    elseif r and matches(r) then
      n = n + 1
      out[#out + 1] = cur
      for i = 1, NF do out[#out + 1] = s(r[i]) end
      if n == size then break end
    end
  end
  if not status then
    if n == size then
      if #call(KEYS[1], 'ZRANGEBYLEX', KEYS[1], '(' .. last, '+', 'LIMIT', 0, 1) > 0 then status = 'more' else status = 'full' end
    elseif seen >= budget then
      status = 'budget'
    end
  end
end
out[1], out[2] = status, last
return out
`)

// scriptTouch: KEYS[1] = lu, ARGV[2..] = pairs of ID and instant (µs).
// Sets each token's last use to the later of the stored and given
// instants. Returns the bad-key errors met (a bad record does not keep the
// others from being touched).
var scriptTouch = newScript(`
need_zsets(KEYS[1])
local errs = {}
for i = 2, #ARGV, 2 do
  local id, at = ARGV[i], tonumber(ARGV[i + 1])
  guarded(errs, function()
    local ik = P .. 'i:' .. id
    local cur = call(ik, 'GET', ik)
    if not cur then return end
    local key = P .. 'h:' .. cur
    local r = call(key, 'HMGET', key, 'id', 'c', 'l')
    if not r[1] then return end
    local c, l = num(key, r[2]) or NEVER, num(key, r[3])
    if l == nil or at > l then
      redis.call('HSET', key, 'l', ARGV[i + 1])
      redis.call('ZADD', KEYS[1], fmt(math.max(c, at)), id)
    end
  end)
end
return errs
`)

// scriptPrune: KEYS[1] = lu, KEYS[2] = end, ARGV[2] = idle-before (µs,
// rounded up; ” for none), ARGV[3] = ended-before (likewise), ARGV[4] =
// the most to delete, ARGV[5] = the most candidates to look at. Candidates
// come from the sorted sets in score order; each is re-checked against its
// record before it is deleted, and a candidate whose score was stale is
// re-scored. A candidate whose keys Redis dropped (EXPIREAT) is removed
// from every index, its owner's, org's and kind's found through its
// back-reference in ix, and not counted. Returns {deleted, 'end' or
// 'budget', bad key errors...}.
var scriptPrune = newScript(`
need_zsets(KEYS[1], KEYS[2], P .. 'ids')
need_ix()
local ib, eb = tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local n, seen, errs = 0, 0, {}
local function matches(key, r)
  if ib and active(key, r) < ib then return true end
  local e, v = num(key, r[I_EXPIRES]), num(key, r[I_REVOKED])
  return eb ~= nil and ((e ~= nil and e < eb) or (v ~= nil and v < eb))
end
local function pass(zkey, bound)
  if not bound then return true end
  local skip = 0
  while n < limit do
    if seen >= budget then return false end
    local ids = redis.call('ZRANGEBYSCORE', zkey, '-inf', '(' .. fmt(bound), 'LIMIT', skip, math.min(100, budget - seen))
    if #ids == 0 then return true end
    for _, id in ipairs(ids) do
      seen = seen + 1
      if not guarded(errs, function()
        local ik = P .. 'i:' .. id
        local cur = call(ik, 'GET', ik)
        local key = cur and P .. 'h:' .. cur
        local r = key and rec(key)
        if not r then
          -- Redis dropped the token (EXPIREAT): its back-reference names
          -- the owner, org and kind indexes that still hold it.
          local kind, owner, org
          local x = redis.call('HGET', IX, id)
          if x then
            kind, owner, org = unbackref(x)
            if not kind then bad(IX, 'corrupt entry for ' .. id) end
            need_zsets(owner_key(kind, owner), legacy_owner_key(owner), P .. 'g:' .. org, P .. 'k:' .. kind)
          end
          if cur then redis.call('DEL', ik) end
          redis.call('ZREM', KEYS[1], id)
          redis.call('ZREM', KEYS[2], id)
          redis.call('ZREM', P .. 'ids', id)
          if x then
            redis.call('ZREM', owner_key(kind, owner), id)
            redis.call('ZREM', legacy_owner_key(owner), id)
            redis.call('ZREM', P .. 'g:' .. org, id)
            redis.call('ZREM', P .. 'k:' .. kind, id)
            redis.call('HDEL', IX, id)
          end
        elseif matches(key, r) then
          drop(key, r)
          n = n + 1
        else
          redis.call('ZADD', KEYS[1], fmt(active(key, r)), id)
          local en = ended(key, r)
          if en then redis.call('ZADD', KEYS[2], fmt(en), id) else redis.call('ZREM', KEYS[2], id) end
        end
      end) then
        skip = skip + 1
      end
      if n >= limit then return true end
    end
  end
  return true
end
local status = 'end'
if not pass(KEYS[1], ib) or not pass(KEYS[2], eb) then status = 'budget' end
local out = {n, status}
for _, e in ipairs(errs) do out[#out + 1] = e end
return out
`)

// scriptRecordPolicy: KEYS[1] = pol, ARGV[2] = prefix, ARGV[3] =
// fingerprint (both empty to only read). Returns the identity held before,
// {prefix, fingerprint} (two empty strings for none), after recording the
// given one if there was none, or its fingerprint if the prefix is the same.
var scriptRecordPolicy = newScript(`
local r = call(KEYS[1], 'HMGET', KEYS[1], 'p', 'f')
local p, f = r[1], s(r[2])
if ARGV[2] == '' and ARGV[3] == '' then return {s(p), f} end
if not p then
  redis.call('HSET', KEYS[1], 'p', ARGV[2], 'f', ARGV[3])
  return {ARGV[2], ARGV[3]}
end
if p == ARGV[2] and f ~= ARGV[3] then redis.call('HSET', KEYS[1], 'f', ARGV[3]) end
return {p, f}
`)

func newScript(body string) *redis.Script { return redis.NewScript(prelude + body) }

// allowOOM is the first line of the scripts that charge or refund a
// budget and of those that revoke: the allow-oom flag (Redis 7.0 or
// later) lets them write when the server has reached maxmemory under
// noeviction, which refuses every other write that may grow memory.
// Without it a full server would fail every rate-limited validation closed
// and refuse to revoke a leaked token. What they add is bounded: a budget
// write adds at most one small key per budget (and budgets expire), a
// revocation two fields and an index entry per token. Create, Update,
// Touch and the rest fail with [ErrOutOfMemory] instead (Delete only
// frees memory, so Redis lets it run).
const allowOOM = "#!lua flags=allow-oom\n"

// newOOMScript is newScript for a script flagged allowOOM.
func newOOMScript(body string) *redis.Script { return redis.NewScript(allowOOM + prelude + body) }

// allScripts lists every script, for preloading.
var allScripts = []*redis.Script{
	scriptGet, fastLookupAllow, scriptLookupAllow, fastAllow, scriptAllow, scriptRefund, scriptCreate, scriptUpdate,
	scriptRevoke, scriptRevokeAll, scriptDelete, scriptList, scriptTouch, scriptPrune, scriptRecordPolicy,
}
