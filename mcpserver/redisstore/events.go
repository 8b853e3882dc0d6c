package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/mcpserver"
)

// Events is a Redis mcpserver.EventLog and mcpserver.LeaseStore. Each stream is a Redis STREAM whose
// entry IDs carry the sequence number and a kind: <seq>-0 is event seq (its
// field "data" holds the message), 0-1 marks a stream opened before its
// first event, and <last seq>-2 marks the end. The stream thus holds its
// own counter (the last ID, which trimming keeps) and its ended flag in one
// key, and every operation is one script on one key (plus the session's
// index). A ZSET per session indexes its open streams for DeleteSession
// (score: when the stream's key expires, so that expired entries are found
// by score).
//
// A stream being written, and its lease, live for the event TTL from their
// last use. A completed stream, and its lease, expire the resume window
// after its end; a second ZSET per session lists the completed streams
// (member "<count>:<bytes>:<stream ID>", score: their expiry) and a HASH
// holds their bytes and how many streams ended, so that when they exceed the logged-bytes cap the oldest are
// deleted at once (every key of a session shares its hash slot, so a
// script may delete them even on Cluster).
//
// A Read that has to wait does not block a Redis connection: every change
// is announced on the wake channel, which one shared pub/sub connection per
// replica receives (see hub), and the Read looks again when its stream
// changed, or when its wait is over.
type Events struct {
	rdb        redis.UniversalClient
	keys       keys
	hub        *hub
	ttl        time.Duration
	window     time.Duration // how long a completed stream is kept
	maxBytes   int64         // of a session's completed streams
	max        int
	sessionTTL time.Duration // for StreamWrite.Session
	// waiting, if set (tests), is called with the stream ID whenever a
	// Read starts waiting for the stream to change.
	waiting func(streamID string)
}

var (
	_ mcpserver.EventLog   = (*Events)(nil)
	_ mcpserver.LeaseStore = (*Events)(nil)
)

// eventsLib is the start of every events script. KEYS[1] is the stream,
// KEYS[2] the session's index of streams; ARGV[1] is the stream ID, ARGV[2]
// the TTL in ms, ARGV[3] the wake channel.
const eventsLib = `
-- last returns the sequence number and kind of the stream's last entry.
local function last()
  local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
  if not e then return nil, nil end
  local seq, kind = string.match(e[1], '^(%d+)%-(%d+)$')
  return tonumber(seq), kind
end
-- clock is the server's time in ms.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- touch indexes the stream (an open one) until the TTL from now, extends
-- the lifetime of both keys and, for a new stream, forgets the index
-- entries of expired streams. now is optional.
local function touch(created, now)
  now = now or clock()
  if created then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('(%d', now))
  end
  redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
`

// readScript: ARGV[4] is the sequence number to read after. It returns nil
// for a missing stream, else the entries after it and whether the stream
// ended. Reading a completed stream does not extend its resume window.
var readScript = redis.NewScript(eventsLib + `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[4] .. '-0', '+')
local _, kind = last()
if kind ~= '2' then touch(false) end
return {entries, kind == '2' and 1 or 0}
`)

// deleteScript deletes KEYS (the index, the streams, then their leases and
// the session's other keys) and announces the change of each stream
// (KEYS[2:ARGV[2]]) on the wake channel ARGV[1].
var deleteScript = redis.NewScript(`
redis.call('DEL', unpack(KEYS))
for i = 2, tonumber(ARGV[2]) do redis.call('PUBLISH', ARGV[1], KEYS[i]) end
return 1
`)

// writeScript implements WriteStream. KEYS[3] is the session's record,
// KEYS[4] the stream's lease, KEYS[5] the session's ZSET of completed
// streams, KEYS[6] the HASH of their bytes and count, KEYS[7] the
// session's subscriptions (extended with the record). ARGV[4] is the session TTL
// in ms, or empty to leave the session alone; ARGV[5] the maximum stream
// length; ARGV[6] '1' to end the stream; ARGV[7] the lease owner, or empty
// for no lease; ARGV[8] the lease TTL in ms; ARGV[9] the lease key's TTL in
// ms; ARGV[10] the request IDs as a JSON array; ARGV[11] the resume window
// in ms; ARGV[12] the cap on the bytes of completed streams; ARGV[13] the
// prefix of the session's stream keys and ARGV[14] that of its lease keys
// (for the completed streams the cap evicts); ARGV[15] what a stream is
// charged on top of its messages; ARGV[16:] the events. Every
// check comes before the first change. Waiting reads are woken only on a
// stream that existed: nobody can wait on one that did not.
var writeScript = redis.NewScript(eventsLib + `
local first = 16
if ARGV[4] ~= '' then
  if redis.call('PEXPIRE', KEYS[3], ARGV[4]) == 0 then
    return redis.error_reply('NOSESSION session not found')
  end
  redis.call('PEXPIRE', KEYS[7], ARGV[4])
end
local now = clock()
local owner = ARGV[7]
if owner ~= '' then
  local cur = redis.call('HMGET', KEYS[4], 'owner', 'until')
  if cur[1] and cur[1] ~= owner and tonumber(cur[2]) >= now then
    return redis.error_reply('LEASED stream leased by another owner')
  end
end
local seq, kind = last()
local n = #ARGV - first + 1
if kind == '2' and n > 0 then return redis.error_reply('ENDED stream is complete') end
local created = seq == nil
seq = seq or 0
if owner ~= '' then
  redis.call('HSET', KEYS[4], 'owner', owner, 'until', string.format('%d', now + tonumber(ARGV[8])), 'ids', ARGV[10])
  redis.call('PEXPIRE', KEYS[4], ARGV[9])
end
for i = 1, n do
  seq = seq + 1
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[5], string.format('%d-0', seq), 'data', ARGV[first - 1 + i])
end
local ended = ARGV[6] == '1' and kind ~= '2'
if ended then
  redis.call('XADD', KEYS[1], string.format('%d-2', seq), 'end', '')
elseif created and n == 0 then
  redis.call('XADD', KEYS[1], '0-1', 'open', '')
end
if kind == '2' then
  -- Complete already: its resume window runs on, and so does its lease's.
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 and redis.call('EXISTS', KEYS[4]) == 1 then redis.call('PEXPIRE', KEYS[4], left) end
elseif ended then
  -- Keep the stream and its lease for the resume window, and account for
  -- its bytes among the session's completed streams.
  local window = tonumber(ARGV[11])
  local size = tonumber(ARGV[15])
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
    local f = e[2]
    for i = 1, #f - 1, 2 do
      if f[i] == 'data' then size = size + #f[i + 1] end
    end
  end
  local expires = string.format('%d', now + window)
  redis.call('PEXPIRE', KEYS[1], window)
  if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('PEXPIRE', KEYS[4], window) end
  -- The index lists the open streams; the completed ones are in KEYS[5].
  redis.call('ZREM', KEYS[2], ARGV[1])
  if created then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('(%d', now)) end
  local total = 0
  -- forget drops a completed stream from the list, and deletes its keys
  -- if evict.
  local function forget(m, evict)
    local bytes, id = string.match(m, '^%d+:(%d+):(.*)$')
    total = redis.call('HINCRBY', KEYS[6], 'bytes', -tonumber(bytes))
    redis.call('ZREM', KEYS[5], m)
    if evict then redis.call('DEL', ARGV[13] .. id, ARGV[14] .. id) end
  end
  -- First those whose window is over. Their keys have expired, but Redis
  -- reclaims an expired key that nobody reads only when its active expiry
  -- samples it, which lags far behind under load: delete them. A list
  -- that empties is deleted, so that it does not keep the size it grew to.
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', string.format('(%d', now))) do forget(m, true) end
  -- The member starts with the session's count of completed streams,
  -- so that streams ending in one millisecond sort in the order they
  -- ended.
  local member = string.format('%016d:%d:%s', redis.call('HINCRBY', KEYS[6], 'ended', 1), size, ARGV[1])
  redis.call('ZADD', KEYS[5], expires, member)
  total = redis.call('HINCRBY', KEYS[6], 'bytes', size)
  -- Then the oldest while over the cap, but not the one that ended just
  -- now.
  while total > tonumber(ARGV[12]) do
    local m = redis.call('ZRANGE', KEYS[5], 0, 0)[1]
    if m == member then break end
    forget(m, true)
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[5], ARGV[2])
  redis.call('PEXPIRE', KEYS[6], ARGV[2])
else
  touch(created, now)
end
if not created and (n > 0 or ended) then redis.call('PUBLISH', ARGV[3], KEYS[1]) end
return seq
`)

// streamCharge is what a completed stream counts for against
// MaxLoggedBytes on top of its messages: about what its STREAM key costs
// Redis when empty (a stream's first node is allocated 4 KiB, or
// stream-node-max-bytes if smaller), so that the cap bounds a session's
// memory however small its messages.
const streamCharge = 4 << 10

// errEnded is returned by WriteStream for events on an ended stream.
var errEnded = errors.New("stream has ended")

// args returns the keys and leading arguments of an events script.
func (l *Events) args(sessionID, streamID string) ([]string, []any) {
	return []string{l.keys.events(sessionID, streamID), l.keys.streams(sessionID)},
		[]any{streamID, ms(l.ttl), l.keys.wake()}
}

// WriteStream implements mcpserver.EventLog: one round trip (a
// script on the keys of one session).
func (l *Events) WriteStream(ctx context.Context, sessionID, streamID string, w *mcpserver.StreamWrite) (last int64, err error) {
	defer wrapf(&err, "write stream")
	k, a := l.args(sessionID, streamID)
	k = append(k, l.keys.session(sessionID), l.keys.lease(sessionID, streamID), l.keys.done(sessionID), l.keys.logged(sessionID),
		l.keys.subscriptions(sessionID))
	sessionTTL := ""
	if w.Session {
		sessionTTL = strconv.FormatInt(ms(l.sessionTTL), 10)
	}
	end := "0"
	if w.End {
		end = "1"
	}
	ids := []byte("[]")
	if w.Owner != "" && len(w.IDs) > 0 {
		if ids, err = json.Marshal(w.IDs); err != nil {
			return 0, err
		}
	}
	a = append(a, sessionTTL, l.max, end, w.Owner, ms(w.LeaseTTL), ms(max(l.ttl, w.LeaseTTL)), ids,
		ms(l.window), l.maxBytes, l.keys.events(sessionID, ""), l.keys.lease(sessionID, ""), streamCharge)
	for _, e := range w.Events {
		a = append(a, e)
	}
	last, err = writeScript.Run(ctx, l.rdb, k, a...).Int64()
	switch {
	case redis.HasErrorPrefix(err, "NOSESSION"):
		return 0, mcpserver.ErrNotFound
	case redis.HasErrorPrefix(err, "LEASED"):
		return 0, mcpserver.ErrLeased
	case redis.HasErrorPrefix(err, "ENDED"):
		return 0, errEnded
	case err != nil:
		return 0, err
	}
	if len(w.Events) > 0 || w.End {
		l.hub.changed(k[0])
	}
	return last, nil
}

// Read implements mcpserver.EventLog: one round trip, plus one per change
// of the stream while it waits.
func (l *Events) Read(ctx context.Context, sessionID, streamID string, after int64, wait time.Duration) (events []mcpserver.Event, ended bool, err error) {
	defer wrapf(&err, "read events")
	k, a := l.args(sessionID, streamID)
	a = append(a, max(after, 0))
	if wait <= 0 {
		return l.read(ctx, k, a)
	}
	return l.readWait(ctx, k, a, wait)
}

// read runs readScript once.
func (l *Events) read(ctx context.Context, k []string, a []any) ([]mcpserver.Event, bool, error) {
	reply, err := readScript.Run(ctx, l.rdb, k, a...).Slice()
	if err != nil {
		return nil, false, err
	}
	return parseRead(reply)
}

// readWait reads until there are events, the stream ended, or wait is
// over: it watches the stream's key on the replica's hub before the first
// read, and reads again each time the hub reports a change.
func (l *Events) readWait(ctx context.Context, k []string, a []any, wait time.Duration) ([]mcpserver.Event, bool, error) {
	// Watch before reading, so that a change after the read is not missed.
	changed, unwatch, err := l.hub.watch(k[0])
	if err != nil {
		return nil, false, err
	}
	defer unwatch()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		events, ended, err := l.read(ctx, k, a)
		if err != nil || len(events) > 0 || ended {
			return events, ended, err
		}
		if l.waiting != nil {
			l.waiting(a[0].(string))
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, false, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// parseRead decodes readScript's reply.
func parseRead(reply []any) (events []mcpserver.Event, ended bool, err error) {
	if len(reply) != 2 {
		return nil, false, fmt.Errorf("unexpected reply %v", reply)
	}
	entries, _ := reply[0].([]any)
	flag, _ := reply[1].(int64)
	for _, e := range entries {
		entry, _ := e.([]any)
		if len(entry) != 2 {
			return nil, false, fmt.Errorf("unexpected entry %v", e)
		}
		id, _ := entry[0].(string)
		seq, kind, ok := strings.Cut(id, "-")
		if !ok || kind != "0" {
			continue // an open or end mark
		}
		n, err := strconv.ParseInt(seq, 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("unexpected entry ID %q", id)
		}
		fields, _ := entry[1].([]any)
		var data string
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "data" {
				data, _ = fields[i+1].(string)
			}
		}
		events = append(events, mcpserver.Event{Seq: n, Data: []byte(data)})
	}
	return events, flag == 1, nil
}

// DeleteSession implements mcpserver.EventLog: two round trips (read the
// index of open streams and the list of completed ones in one pipeline,
// then delete everything they name in one script). Reads waiting on
// the session's streams, on any replica, return ErrNotFound.
func (l *Events) DeleteSession(ctx context.Context, sessionID string) (err error) {
	defer wrapf(&err, "delete event streams")
	index := l.keys.streams(sessionID)
	var open, completed *redis.StringSliceCmd
	if _, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		open = p.ZRange(ctx, index, 0, -1)
		completed = p.ZRange(ctx, l.keys.done(sessionID), 0, -1)
		return nil
	}); err != nil {
		return err
	}
	streams := open.Val()
	for _, m := range completed.Val() {
		// "<count>:<bytes>:<stream ID>"
		if _, rest, ok := strings.Cut(m, ":"); ok {
			if _, id, ok := strings.Cut(rest, ":"); ok {
				streams = append(streams, id)
			}
		}
	}
	k := []string{index}
	for _, s := range streams {
		k = append(k, l.keys.events(sessionID, s))
	}
	n := len(k)
	for _, s := range streams {
		k = append(k, l.keys.lease(sessionID, s))
	}
	k = append(k, l.keys.done(sessionID), l.keys.logged(sessionID))
	if err := deleteScript.Run(ctx, l.rdb, k, l.keys.wake(), n).Err(); err != nil {
		return err
	}
	for _, key := range k[1:n] {
		l.hub.changed(key)
	}
	return nil
}

// ms is d in whole milliseconds, at least 1: what PX and PEXPIRE take.
func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }
