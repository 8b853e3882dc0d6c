package memstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/remotemcp/remotemcp/authz/as"
)

// MaxRateLimitKeys bounds how many keys a RateLimiter remembers. When it is
// full, a new key first frees the key that would be forgotten soonest (the
// one with the least debt), so that a flood of fresh keys (addresses) costs
// bounded memory and forgives as little as possible.
const MaxRateLimitKeys = 100_000

var errBadLimit = errors.New("memstore: rate limit and window must be positive")

// endOfTime is later than any entry's expiry: sweeping at it frees the
// earliest entry, expired or not.
var endOfTime = time.Unix(1<<62, 0)

// A RateLimiter implements as.RateLimiter in process memory, with GCRA:
// one time per key, forgotten when it passes. It is the limiter of a
// single replica (each replica counts alone); it passes
// storetest.RunRateLimiter. It is safe for concurrent use.
type RateLimiter struct {
	now     func() time.Time
	maxKeys int

	mu  sync.Mutex
	tat table[string, time.Time] // the theoretical arrival time, expiring at itself
}

var _ as.RateLimiter = (*RateLimiter)(nil)

// NewRateLimiter returns a RateLimiter that remembers nothing yet. Only
// opts.Now is used.
func NewRateLimiter(opts *Options) *RateLimiter {
	l := &RateLimiter{now: time.Now, maxKeys: MaxRateLimitKeys}
	if opts != nil && opts.Now != nil {
		l.now = opts.Now
	}
	l.tat.init()
	return l
}

// Allow implements as.RateLimiter.
func (l *RateLimiter) Allow(_ context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	if limit <= 0 || window <= 0 {
		return false, 0, errBadLimit
	}
	interval := max(window/time.Duration(limit), 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.tat.sweep(now, sweepBatch)
	tat, known := l.tat.get(key, now) // known only while tat is after now
	if !known {
		tat = now
	}
	next := tat.Add(interval)
	if allowAt := next.Add(-window); now.Before(allowAt) {
		return false, allowAt.Sub(now), nil
	}
	if !known && l.tat.len() >= l.maxKeys {
		l.tat.sweep(endOfTime, 1)
	}
	l.tat.put(key, next, next)
	return true, 0, nil
}

// len returns how many keys the limiter holds, expired or not; for tests.
func (l *RateLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tat.len()
}
