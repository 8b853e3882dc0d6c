package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each one touches the keys of one hash tag only (its
// KEYS all share a slot, which Redis Cluster checks), and writes nothing
// without an expiry. Time comes from the server (TIME), so that every
// replica measures TTLs and token expiry on the same clock.
//
// go-redis retries a command after a read timeout or a broken connection,
// even when the server ran it; the scripts that are not idempotent take a
// random operation id (the "op" argument) and recognise their own retry.

// luaNow is a prelude: now() is the server's time in microseconds (exact
// in a Lua number, and fine enough that the tokens of a family, rotated
// one after another, are scored in the order they were issued), and int()
// formats a number for redis.call without the %.14g rounding of Lua's own
// number-to-string conversion.
const luaNow = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function int(n)
  return string.format('%.0f', n)
end
`

// createScript stores a record once: KEYS[1] is a hash {rec, op}; ARGV is
// rec, op, ttl (ms). It returns 1 if the record is stored (by this call or
// its retry), 0 if the key was taken.
var createScript = redis.NewScript(`
local op = redis.call('HGET', KEYS[1], 'op')
if op then
  if op == ARGV[2] and redis.call('HEXISTS', KEYS[1], 'taken') == 0 then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'op', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// clientIndexScript admits a new client under Options.MaxClients, or
// moves the expiry of one it holds: KEYS[1] is the client index, a sorted
// set of client IDs scored by expiry (ms, on the server's clock); ARGV[1]
// is the client ID, ARGV[2] its TTL (ms), ARGV[3] the bound (0: only
// update a member, for TouchClient). It first drops the expired members.
// It returns 0 when the bound is reached and the ID is not a member (or,
// for a touch, not a member), else 1. The index expires with its longest
// member.
var clientIndexScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
local member = redis.call('ZSCORE', KEYS[1], ARGV[1])
local max = tonumber(ARGV[3])
if not member and (max == 0 or redis.call('ZCARD', KEYS[1]) >= max) then return 0 end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', tonumber(last[2])))
return 1
`)

// takeCodeScript consumes a code: KEYS[1] is the code's hash {rec, op,
// taken}; ARGV[1] is the op of this take. It returns nil for no code,
// {0, rec} to the first taker (and its retry), {1, rec} to anyone else.
// The tombstone keeps the code's TTL.
var takeCodeScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'rec', 'taken')
if not v[1] then return false end
if not v[2] then
  redis.call('HSET', KEYS[1], 'taken', ARGV[1])
  return {0, v[1]}
end
if v[2] == ARGV[1] then return {0, v[1]} end
return {1, v[1]}
`)

// putUnlessRevokedScript stores a record of a grant unless the grant is
// revoked: KEYS[1] is the record, KEYS[2] the grant's revocation mark;
// ARGV is rec, ttl (ms). It returns 1 if stored, 0 if revoked.
var putUnlessRevokedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// luaRevoke is a prelude: revoke(g, minTTL, channel, id) marks the grant
// whose keys are g revoked, for minTTL ms (or as long as an earlier mark
// has left, if longer); deletes its records; and announces it.
// It returns the hashes of the family's tokens, whose index entries the
// caller deletes (they are in other slots).
const luaRevoke = `
local function revoke(g, minTTL, channel, id)
  local ttl = tonumber(minTTL)
  local p = redis.call('PTTL', g.revoked)
  if p > ttl then ttl = p end
  local members = redis.call('ZRANGE', g.tokens, 0, -1)
  redis.call('SET', g.revoked, '1', 'PX', int(ttl))
  redis.call('DEL', g.grant, g.family, g.tokens, g.upstream)
  redis.call('PUBLISH', channel, id)
  return members
end
`

// revokeScript revokes a grant: KEYS are the grant's keys in the order of
// grantKeys.all; ARGV is min TTL (ms), channel, grant ID. It returns the
// hashes of the tokens the family held.
var revokeScript = redis.NewScript(luaNow + luaRevoke + `
return revoke({grant = KEYS[1], revoked = KEYS[2], family = KEYS[3], tokens = KEYS[4], upstream = KEYS[5]},
  ARGV[1], ARGV[2], ARGV[3])
`)

// issueScript starts the refresh family of a grant, replacing any: KEYS
// are revoked, family, tokens; ARGV is client ID, token hash, ttl (ms). It
// returns {"1", hashes of the replaced family's tokens...} if the family
// was started, {"0"} if the grant is revoked.
//
// The family is a hash {client, current, previous, rs, rn, res}: the
// client, the current and previous token hashes, when the previous one
// was replaced (Unix seconds and nanoseconds on the caller's clock) and
// the result that installed the current one. Its tokens are a sorted set
// of token hashes by expiry (µs, server clock).
var issueScript = redis.NewScript(luaNow + `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'0'} end
local out = {'1'}
for _, h in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if h ~= ARGV[2] then table.insert(out, h) end
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[2], 'client', ARGV[1], 'current', ARGV[2])
redis.call('ZADD', KEYS[3], int(now() + tonumber(ARGV[3]) * 1000), ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return out
`)

// rotateScript rotates a refresh token: KEYS are the grant's keys in the
// order of grantKeys.all; ARGV is presented hash, new hash, client ID,
// at (Unix s), at (ns), grace cutoff (Unix s), cutoff (ns), grace ("1" if
// positive), ttl (ms), max tokens, channel, grant ID, revocation TTL (ms).
// It returns {"0"} for an unknown token, {result, forgotten hashes...}
// otherwise (see as.RotateResult): the hashes are of the tokens the family
// no longer remembers (expired, beyond max tokens, or every token of a
// family that Reused revoked), whose index entries the caller deletes.
var rotateScript = redis.NewScript(luaNow + luaRevoke + `
local g = {grant = KEYS[1], revoked = KEYS[2], family = KEYS[3], tokens = KEYS[4], upstream = KEYS[5]}
local f = redis.call('HMGET', g.family, 'client', 'current', 'previous', 'rs', 'rn', 'res')
if not f[1] then return {'0'} end
local t = now()
local exp = redis.call('ZSCORE', g.tokens, ARGV[1])
if not exp or tonumber(exp) <= t then return {'0'} end
if f[2] == ARGV[2] then return {f[6]} end -- our own retry
local res
if ARGV[1] == f[2] then
  res = 1
elseif f[3] and ARGV[1] == f[3] and ARGV[3] == f[1] and ARGV[8] == '1' and
    (tonumber(f[4]) > tonumber(ARGV[6]) or
     (tonumber(f[4]) == tonumber(ARGV[6]) and tonumber(f[5]) >= tonumber(ARGV[7]))) then
  res = 2
else
  local out = {'3'}
  for _, h in ipairs(revoke(g, ARGV[13], ARGV[11], ARGV[12])) do table.insert(out, h) end
  return out
end
local previous = f[3]
if res == 1 then
  previous = ARGV[1]
  redis.call('HSET', g.family, 'previous', ARGV[1], 'rs', ARGV[4], 'rn', ARGV[5])
end
redis.call('HSET', g.family, 'current', ARGV[2], 'res', res)
local ttl = tonumber(ARGV[9])
local out = {tostring(res)}
redis.call('ZADD', g.tokens, int(t + ttl * 1000), ARGV[2])
for _, h in ipairs(redis.call('ZRANGEBYSCORE', g.tokens, '-inf', int(t))) do
  if h ~= ARGV[2] and h ~= previous then
    redis.call('ZREM', g.tokens, h)
    table.insert(out, h)
  end
end
local excess = redis.call('ZCARD', g.tokens) - tonumber(ARGV[10])
if excess > 0 then
  for _, h in ipairs(redis.call('ZRANGE', g.tokens, 0, excess + 1)) do
    if excess == 0 then break end
    if h ~= ARGV[2] and h ~= previous then
      redis.call('ZREM', g.tokens, h)
      table.insert(out, h)
      excess = excess - 1
    end
  end
end
for _, k in ipairs({g.family, g.tokens}) do
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ARGV[9]) end
end
return out
`)

// lookupScript finds a live token of a live family: KEYS are family,
// tokens; ARGV[1] is the token hash. It returns the family's client ID, or
// nil.
var lookupScript = redis.NewScript(luaNow + `
local c = redis.call('HGET', KEYS[1], 'client')
if not c then return false end
local exp = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not exp or tonumber(exp) <= now() then return false end
return c
`)
