package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/mcpserver"
)

// Sessions is a Redis mcpserver.SessionStore. Each record is a JSON
// STRING with the idle TTL, extended by Get and Update.
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
	data, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	added, err := s.admit(ctx, sess.Subject, sess.ID)
	if err != nil {
		return err
	}
	ok, err := s.rdb.SetNX(ctx, s.keys.session(sess.ID), data, s.ttl).Result()
	if err == nil && !ok {
		err = errSessionExists
	}
	if err != nil && added {
		// Best effort: a leftover ID is dropped at the limit anyway.
		s.rdb.SRem(context.WithoutCancel(ctx), s.keys.subjectSessions(sess.Subject), sess.ID)
	}
	return err
}

// Get implements mcpserver.SessionStore with GETEX PX, which reads the
// record and extends its lifetime in one round trip.
func (s *Sessions) Get(ctx context.Context, id string) (_ *mcpserver.Session, err error) {
	defer wrapf(&err, "get session")
	data, err := s.rdb.GetEx(ctx, s.keys.session(id), s.ttl).Bytes()
	if err != nil {
		return nil, err
	}
	return decodeSession(data)
}

func decodeSession(data []byte) (*mcpserver.Session, error) {
	var sess mcpserver.Session
	if err := json.Unmarshal(data, &sess); err != nil {
		return nil, err
	}
	return &sess, nil
}

// casScript replaces the record only if it is still the one that was read,
// and extends its lifetime. It returns 1 on success, 0 if the record
// changed, -1 if it is gone.
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// maxUpdateAttempts bounds the optimistic retries of Update under
// contention; 16 concurrent writers of one session need far fewer.
const maxUpdateAttempts = 64

// Update implements mcpserver.SessionStore as an optimistic transaction:
// GETEX, fn on a private copy, then a compare-and-set script that writes
// only if the record is unchanged; on a conflict it starts over. fn may
// therefore run more than once, each time on the current record. Two round
// trips without contention. (A compare-and-set script rather than
// WATCH/MULTI, which would pin a pooled connection for the duration.)
func (s *Sessions) Update(ctx context.Context, id string, fn func(*mcpserver.Session)) (err error) {
	defer wrapf(&err, "update session")
	key := s.keys.session(id)
	for attempt := range maxUpdateAttempts {
		old, err := s.rdb.GetEx(ctx, key, s.ttl).Bytes()
		if err != nil {
			return err
		}
		sess, err := decodeSession(old)
		if err != nil {
			return err
		}
		fn(sess)
		sess.ID = id
		data, err := json.Marshal(sess)
		if err != nil {
			return err
		}
		res, err := casScript.Run(ctx, s.rdb, []string{key}, old, data, ms(s.ttl)).Int()
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

// Delete implements mcpserver.SessionStore: one DEL. The session's event
// streams are left to EventLog.DeleteSession (which the Handler calls on
// DELETE) or to their TTL: removing them here would race with the Handler,
// which forgets a session whose initialize failed before it appends the
// error response that the client is waiting for.
func (s *Sessions) Delete(ctx context.Context, id string) (err error) {
	defer wrapf(&err, "delete session")
	return s.rdb.Del(ctx, s.keys.session(id)).Err()
}
