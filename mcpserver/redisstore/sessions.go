package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/mcpserver"
)

// Sessions is a Redis mcpserver.SessionStore and SubscriptionStore. Each
// record is a JSON STRING with the idle TTL, extended by Get and Update;
// its subscriptions are a SET beside it (keys.subscriptions) with the same
// TTL, so that a subscription adds or removes one member instead of
// rewriting the record.
//
// A subject's session IDs are also in a SET (keys.subjectSessions), which
// bounds them: Create adds to it under the limit, atomically. Delete and
// expiry leave the ID there; a Create that finds the subject at the limit
// drops the IDs whose record is gone and tries once more. The SET lives
// subjectIndexTTL past the subject's last Create: a subject that keeps
// sessions alive for longer without opening any may open the limit again.
type Sessions struct {
	rdb  redis.UniversalClient
	keys keys
	ttl  time.Duration
	max  int // sessions per subject
}

// subjectIndexTTL is the least lifetime of a subject's SET of sessions
// after its last Create.
const subjectIndexTTL = 24 * time.Hour

// admitScript adds a session ID to its subject's SET unless the subject
// is at the limit.
//
//	KEYS: the subject's SET
//	ARGV: id, limit, TTL ms
//	returns 2 when added, 1 when already there, 0 at the limit
var admitScript = redis.NewScript(`
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 2
`)

// admit adds id to the subject's sessions, if under the limit: once, then,
// at the limit, again after dropping the sessions that are gone.
func (s *Sessions) admit(ctx context.Context, subject, id string) (added bool, err error) {
	idx := s.keys.subjectSessions(subject)
	ttl := ms(max(subjectIndexTTL, 2*s.ttl))
	for attempt := range 2 {
		res, err := admitScript.Run(ctx, s.rdb, []string{idx}, id, s.max, ttl).Int()
		if err != nil {
			return false, err
		}
		if res > 0 {
			return res == 2, nil
		}
		if attempt == 1 {
			break
		}
		ids, err := s.rdb.SMembers(ctx, idx).Result()
		if err != nil {
			return false, err
		}
		pipe := s.rdb.Pipeline()
		exists := make([]*redis.IntCmd, len(ids))
		for i, id := range ids {
			exists[i] = pipe.Exists(ctx, s.keys.session(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return false, err
		}
		var gone []any
		for i, c := range exists {
			if c.Val() == 0 {
				gone = append(gone, ids[i])
			}
		}
		if len(gone) == 0 {
			break
		}
		if err := s.rdb.SRem(ctx, idx, gone...).Err(); err != nil {
			return false, err
		}
	}
	return false, mcpserver.ErrSessionLimit
}

var _ mcpserver.SessionStore = (*Sessions)(nil)

// errSessionExists is returned by Create for a live ID.
var errSessionExists = errors.New("session exists")

// Create implements mcpserver.SessionStore: a script that admits the ID
// to its subject's sessions, then SET NX PX; two round trips (more at the
// limit).
func (s *Sessions) Create(ctx context.Context, sess *mcpserver.Session) (err error) {
	defer wrapf(&err, "create session")
	data, err := encodeSession(sess)
	if err != nil {
		return err
	}
	added, err := s.admit(ctx, sess.Subject, sess.ID)
	if err != nil {
		return err
	}
	ok, err := createScript.Run(ctx, s.rdb, []string{s.keys.session(sess.ID), s.keys.subscriptions(sess.ID)},
		append([]any{data, ms(s.ttl)}, anys(sess.Subscriptions)...)...).Bool()
	if err == nil && !ok {
		err = errSessionExists
	}
	if err != nil && added {
		// Best effort: a leftover ID is dropped at the limit anyway.
		s.rdb.SRem(context.WithoutCancel(ctx), s.keys.subjectSessions(sess.Subject), sess.ID)
	}
	return err
}

// encodeSession is the record as stored, without its subscriptions
// (which are the SET's), refused past mcpserver.MaxSessionBytes.
func encodeSession(sess *mcpserver.Session) ([]byte, error) {
	rest := *sess
	rest.Subscriptions = nil
	data, err := json.Marshal(&rest)
	if err == nil && len(data) > mcpserver.MaxSessionBytes {
		err = mcpserver.ErrSessionTooLarge
	}
	return data, err
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// createScript stores a new record and its subscriptions.
//
//	KEYS: the record, its subscriptions
//	ARGV: record, TTL ms, subscriptions...
//	returns 1 when created, 0 if the record exists
var createScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) == false then return 0 end
redis.call('DEL', KEYS[2])
if #ARGV > 2 then
  redis.call('SADD', KEYS[2], unpack(ARGV, 3))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
`)

// getScript reads a record and its subscriptions, and extends both.
//
//	KEYS: the record, its subscriptions
//	ARGV: TTL ms
//	returns {record, subscriptions...}, or nil if there is no record
var getScript = redis.NewScript(`
local rec = redis.call('GET', KEYS[1])
if not rec then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
local out = redis.call('SMEMBERS', KEYS[2])
table.insert(out, 1, rec)
return out
`)

// Get implements mcpserver.SessionStore: one script, which reads the
// record and its subscriptions and extends their lifetime.
func (s *Sessions) Get(ctx context.Context, id string) (_ *mcpserver.Session, err error) {
	defer wrapf(&err, "get session")
	sess, _, err := s.get(ctx, id)
	return sess, err
}

// get returns the session and its record as stored.
func (s *Sessions) get(ctx context.Context, id string) (*mcpserver.Session, string, error) {
	v, err := getScript.Run(ctx, s.rdb, []string{s.keys.session(id), s.keys.subscriptions(id)}, ms(s.ttl)).StringSlice()
	if err != nil {
		return nil, "", err
	}
	if len(v) == 0 {
		return nil, "", errors.New("empty reply")
	}
	var sess mcpserver.Session
	if err := json.Unmarshal([]byte(v[0]), &sess); err != nil {
		return nil, "", err
	}
	if subs := v[1:]; len(subs) > 0 {
		slices.Sort(subs)
		sess.Subscriptions = append(sess.Subscriptions, subs...)
	}
	return &sess, v[0], nil
}

// casScript replaces the record only if it is still the one that was read,
// applies the changes to its subscriptions, and extends their lifetime.
//
//	KEYS: the record, its subscriptions
//	ARGV: the record read, the new record, TTL ms, how many subscriptions
//	      to add, then those, then the ones to remove
//	returns 1 on success, 0 if the record changed, -1 if it is gone
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
local n = tonumber(ARGV[4])
for i = 5, 4 + n do redis.call('SADD', KEYS[2], ARGV[i]) end
for i = 5 + n, #ARGV do redis.call('SREM', KEYS[2], ARGV[i]) end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`)

// subscribeScript adds or removes one subscription.
//
//	KEYS: the record, its subscriptions
//	ARGV: URI, "1" to add or "0" to remove, TTL ms, the limit
//	returns 1 on success, 0 at the limit, -1 if the session is gone
var subscribeScript = redis.NewScript(`
if redis.call('PEXPIRE', KEYS[1], ARGV[3]) == 0 then return -1 end
if ARGV[2] == '1' then
  if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
    return 0
  end
  redis.call('SADD', KEYS[2], ARGV[1])
else
  redis.call('SREM', KEYS[2], ARGV[1])
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`)

var _ mcpserver.SubscriptionStore = (*Sessions)(nil)

// SetSubscription implements mcpserver.SubscriptionStore: one script on
// the SET of the session's subscriptions; the record is only extended.
func (s *Sessions) SetSubscription(ctx context.Context, id, uri string, subscribed bool) (err error) {
	defer wrapf(&err, "set subscription")
	on := "0"
	if subscribed {
		on = "1"
	}
	res, err := subscribeScript.Run(ctx, s.rdb, []string{s.keys.session(id), s.keys.subscriptions(id)}, uri, on, ms(s.ttl), mcpserver.MaxSubscriptions).Int()
	switch {
	case err != nil:
		return err
	case res == -1:
		return mcpserver.ErrNotFound
	case res == 0:
		return mcpserver.ErrSubscriptionLimit
	}
	return nil
}

// maxUpdateAttempts bounds the optimistic retries of Update under
// contention; 16 concurrent writers of one session need far fewer.
const maxUpdateAttempts = 64

// Update implements mcpserver.SessionStore as an optimistic transaction:
// a read (as Get), fn on a private copy, then a compare-and-set script that
// writes only if the record is unchanged, and applies the changes fn made
// to the subscriptions; on a conflict it starts over. fn may
// therefore run more than once, each time on the current record. Two round
// trips without contention. (A compare-and-set script rather than
// WATCH/MULTI, which would pin a pooled connection for the duration.)
func (s *Sessions) Update(ctx context.Context, id string, fn func(*mcpserver.Session)) (err error) {
	defer wrapf(&err, "update session")
	keys := []string{s.keys.session(id), s.keys.subscriptions(id)}
	for attempt := range maxUpdateAttempts {
		sess, old, err := s.get(ctx, id)
		if err != nil {
			return err
		}
		had := slices.Clone(sess.Subscriptions)
		fn(sess)
		sess.ID = id
		data, err := encodeSession(sess)
		if err != nil {
			return err
		}
		var added, removed []any
		for _, u := range sess.Subscriptions {
			if !slices.Contains(had, u) {
				added = append(added, u)
			}
		}
		for _, u := range had {
			if !slices.Contains(sess.Subscriptions, u) {
				removed = append(removed, u)
			}
		}
		args := append([]any{old, data, ms(s.ttl), len(added)}, added...)
		res, err := casScript.Run(ctx, s.rdb, keys, append(args, removed...)...).Int()
		if err != nil {
			return err
		}
		switch res {
		case 1:
			return nil
		case -1:
			return mcpserver.ErrNotFound
		}
		// Someone else wrote first: back off a little, with jitter, so
		// that writers of a hot session do not collide in lockstep.
		d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5)))
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.New("too much contention")
}

// Delete implements mcpserver.SessionStore: one DEL of the record and its
// subscriptions. The session's event
// streams are left to EventLog.DeleteSession (which the Handler calls on
// DELETE) or to their TTL: removing them here would race with the Handler,
// which forgets a session whose initialize failed before it appends the
// error response that the client is waiting for.
func (s *Sessions) Delete(ctx context.Context, id string) (err error) {
	defer wrapf(&err, "delete session")
	return s.rdb.Del(ctx, s.keys.session(id), s.keys.subscriptions(id)).Err()
}
