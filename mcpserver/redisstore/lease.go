package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// leaseLib is the start of every lease script. KEYS[1] is the lease,
// KEYS[2] the session's index of streams; now() is the server's clock, so
// that every replica judges expiry alike.
const leaseLib = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// leaseScript takes or renews a lease. KEYS[3] is the stream. ARGV[1] is
// the stream ID, ARGV[2] the key's TTL in ms (the event TTL), ARGV[3] the
// owner, ARGV[4] the lease's TTL in ms, ARGV[5] the request IDs as a JSON
// array. It returns 1 if the owner holds the lease, 0 if another owner
// holds a live one. The lease of a completed stream (a renewal racing the
// end) expires with the stream.
var leaseScript = redis.NewScript(leaseLib + `
local t = now()
local cur = redis.call('HMGET', KEYS[1], 'owner', 'until')
if cur[1] and cur[1] ~= ARGV[3] and tonumber(cur[2]) >= t then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'until', string.format('%d', t + tonumber(ARGV[4])), 'ids', ARGV[5])
local e = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)[1]
if e and string.match(e[1], '%-2$') then
  local left = redis.call('PTTL', KEYS[3])
  if left > 0 then redis.call('PEXPIRE', KEYS[1], left) end
  return 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'GT', string.format('%d', t + tonumber(ARGV[2])), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)

// holderScript returns a lease's owner, IDs and whether it is live (1), or
// nil if there is none.
var holderScript = redis.NewScript(leaseLib + `
local v = redis.call('HMGET', KEYS[1], 'owner', 'until', 'ids')
if not v[1] then return false end
return {v[1], v[3] or '[]', tonumber(v[2]) >= now() and 1 or 0}
`)

// Lease implements mcpserver.LeaseStore: one round trip. The lease is a
// HASH (owner, until in server ms, ids) that lives as long as the stream,
// so that it outlives its lapse; DeleteSession deletes it.
func (l *Events) Lease(ctx context.Context, sessionID, streamID, owner string, ids []json.RawMessage, ttl time.Duration) (ok bool, err error) {
	defer wrapf(&err, "lease stream")
	if ids == nil {
		ids = []json.RawMessage{}
	}
	enc, err := json.Marshal(ids)
	if err != nil {
		return false, err
	}
	k := []string{l.keys.lease(sessionID, streamID), l.keys.streams(sessionID), l.keys.events(sessionID, streamID)}
	n, err := leaseScript.Run(ctx, l.rdb, k, streamID, ms(max(l.ttl, ttl)), owner, ms(ttl), enc).Int64()
	return n == 1, err
}

// LeaseHolder implements mcpserver.LeaseStore: one round trip.
func (l *Events) LeaseHolder(ctx context.Context, sessionID, streamID string) (owner string, ids []json.RawMessage, live bool, err error) {
	defer wrapf(&err, "read stream lease")
	reply, err := holderScript.Run(ctx, l.rdb, []string{l.keys.lease(sessionID, streamID)}).Slice()
	if err != nil {
		return "", nil, false, err
	}
	if len(reply) != 3 {
		return "", nil, false, fmt.Errorf("unexpected reply %v", reply)
	}
	owner, _ = reply[0].(string)
	enc, _ := reply[1].(string)
	flag, _ := reply[2].(int64)
	if err := json.Unmarshal([]byte(enc), &ids); err != nil {
		return "", nil, false, err
	}
	return owner, ids, flag == 1, nil
}
