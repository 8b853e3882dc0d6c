package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz/upstream"
)

// A Locker is upstream.Locker on Redis: the vault's upstream refresh of one
// grant runs on one replica at a time. The lock is a key set
// with NX and an expiry (so that a dead holder cannot block the grant for
// longer than TTL), holding a random token; unlocking deletes it only if
// it still holds that token. A holder that stalls past the expiry may
// lose the lock to another replica: the vault's compare-and-swap write
// (upstream.TokenSwapper) is the fence that keeps it from
// overwriting the newer token.
type Locker struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	poll   time.Duration
}

var _ upstream.Locker = (*Locker)(nil)

// LockerOptions configures a Locker; zero fields mean the defaults.
type LockerOptions struct {
	// KeyPrefix as in Options. Default DefaultKeyPrefix.
	KeyPrefix string
	// TTL is how long a lock lives if its holder never releases it.
	// Default 30s: longer than an upstream refresh may take.
	TTL time.Duration
	// Poll is how often a waiting Lock retries. Default 50ms.
	Poll time.Duration
}

// NewLocker returns a Locker on rdb.
func NewLocker(rdb redis.UniversalClient, opts *LockerOptions) *Locker {
	if rdb == nil {
		panic("redisstore: nil redis client")
	}
	var o LockerOptions
	if opts != nil {
		o = *opts
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		panic("redisstore: the key prefix must not contain '{' or '}'")
	}
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 50 * time.Millisecond
	}
	return &Locker{rdb: rdb, prefix: o.KeyPrefix, ttl: o.TTL, poll: o.Poll}
}

// unlockScript deletes the lock only if it still holds our token.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

// Lock blocks until the lock on key is held or ctx is done.
func (l *Locker) Lock(ctx context.Context, key string) (unlock func(), err error) {
	k := l.prefix + "{lock:" + key + "}"
	token := rand.Text()
	for {
		ok, err := l.rdb.SetNX(ctx, k, token, l.ttl).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: lock %s: %w", key, err)
		}
		if ok {
			return func() {
				// A fresh context: the caller's may be done, and the lock
				// should go now rather than at its expiry.
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				_ = unlockScript.Run(uctx, l.rdb, []string{k}, token).Err()
			}, nil
		}
		t := time.NewTimer(l.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("redisstore: lock %s: %w", key, errors.Join(ctx.Err(), upstream.ErrUnavailable))
		case <-t.C:
		}
	}
}
