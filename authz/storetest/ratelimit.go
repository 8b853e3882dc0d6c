package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/authz/as"
)

// A Limiter is one rate limiter under test and control of its clock.
type Limiter struct {
	RateLimiter as.RateLimiter
	// Advance lets at least d pass on the limiter's clock: a fake clock
	// moves, a real one (Redis) sleeps. REQUIRED.
	Advance func(d time.Duration)
}

// RunRateLimiter runs the contract tests of as.RateLimiter: a token
// bucket of limit requests refilled at limit per window, as documented
// there. newLimiter is called once per subtest; limiters may share their
// data between calls (a Redis server): every subtest uses fresh keys.
//
// Where the suite counts on time not passing (a burst, a race), its
// windows are an hour long, so that a real clock's few milliseconds refill
// nothing; where it lets time pass, they are a few seconds.
func RunRateLimiter(t *testing.T, newLimiter func(t *testing.T) Limiter) {
	t.Helper()
	t.Run("Complete", func(t *testing.T) {
		l := newLimiter(t)
		if l.RateLimiter == nil || l.Advance == nil {
			t.Fatalf("newLimiter returned an incomplete Limiter: %+v", l)
		}
	})
	t.Run("Burst", func(t *testing.T) { testBurst(t, newLimiter(t)) })
	t.Run("Refill", func(t *testing.T) { testRefill(t, newLimiter(t)) })
	t.Run("Window", func(t *testing.T) { testWindow(t, newLimiter(t)) })
	t.Run("RefusedDoNotCount", func(t *testing.T) { testRefusedDoNotCount(t, newLimiter(t)) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, newLimiter(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrentAllow(t, newLimiter(t)) })
	t.Run("BadArguments", func(t *testing.T) { testBadArguments(t, newLimiter(t)) })
}

// allowN calls Allow n times and fails unless every call is allowed.
func allowN(t *testing.T, l Limiter, key string, n, limit int, window time.Duration) {
	t.Helper()
	for i := range n {
		ok, _, err := l.RateLimiter.Allow(ctxFor(t), key, limit, window)
		if err != nil || !ok {
			t.Fatalf("Allow #%d of %d (limit %d per %v) = %v, %v; want allowed", i+1, n, limit, window, ok, err)
		}
	}
}

// refused calls Allow once, fails unless it is refused, and returns the
// retry delay.
func refused(t *testing.T, l Limiter, key string, limit int, window time.Duration) time.Duration {
	t.Helper()
	ok, retry, err := l.RateLimiter.Allow(ctxFor(t), key, limit, window)
	if err != nil || ok {
		t.Fatalf("Allow over the limit (%d per %v) = %v, %v; want refused", limit, window, ok, err)
	}
	if retry <= 0 || retry > window/time.Duration(limit) {
		t.Fatalf("retryAfter = %v, want in (0, %v]", retry, window/time.Duration(limit))
	}
	return retry
}

// testBurst: a fresh key gets limit requests at once, then a refusal that
// says to wait about one interval.
func testBurst(t *testing.T, l Limiter) {
	key := newID()
	const limit, window = 5, time.Hour
	allowN(t, l, key, limit, limit, window)
	retry := refused(t, l, key, limit, window)
	// Nothing was refilled yet: the wait is the whole interval, give or
	// take the time the calls took on a real clock.
	if interval := window / limit; retry < interval-time.Minute {
		t.Errorf("retryAfter = %v, want about %v", retry, interval)
	}
}

// testRefill: after waiting retryAfter, one more request is allowed, and
// only one.
func testRefill(t *testing.T, l Limiter) {
	key := newID()
	const limit, window = 4, 2 * time.Second // one every 500ms
	allowN(t, l, key, limit, limit, window)
	retry := refused(t, l, key, limit, window)
	l.Advance(retry)
	allowN(t, l, key, 1, limit, window)
	refused(t, l, key, limit, window)
}

// testWindow: a key idle for a window has its whole burst again.
func testWindow(t *testing.T, l Limiter) {
	key := newID()
	const limit, window = 3, time.Second
	allowN(t, l, key, limit, limit, window)
	refused(t, l, key, limit, window)
	l.Advance(window)
	allowN(t, l, key, limit, limit, window)
	refused(t, l, key, limit, window)
}

// testRefusedDoNotCount: hammering a key that is over its limit does not
// push its next allowed request further out.
func testRefusedDoNotCount(t *testing.T, l Limiter) {
	key := newID()
	const limit, window = 2, 2 * time.Second // one every second
	allowN(t, l, key, limit, limit, window)
	first := refused(t, l, key, limit, window)
	for range 20 {
		if retry := refused(t, l, key, limit, window); retry > first {
			t.Fatalf("retryAfter grew from %v to %v while refused", first, retry)
		}
	}
	l.Advance(first)
	allowN(t, l, key, 1, limit, window)
}

// testKeys: keys have separate budgets.
func testKeys(t *testing.T, l Limiter) {
	a, b := newID(), newID()
	const limit, window = 1, time.Hour
	allowN(t, l, a, 1, limit, window)
	refused(t, l, a, limit, window)
	allowN(t, l, b, 1, limit, window)
	refused(t, l, b, limit, window)
}

// testConcurrentAllow: of many calls at once on a fresh key, exactly limit
// are allowed.
func testConcurrentAllow(t *testing.T, l Limiter) {
	key := newID()
	const limit, window, calls = 10, time.Hour, 5
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range calls {
				ok, _, err := l.RateLimiter.Allow(ctxFor(t), key, limit, window)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != limit {
		t.Errorf("%d of %d concurrent calls allowed, want %d", got, workers*calls, limit)
	}
}

// testBadArguments: a limit or window that is not positive is an error.
func testBadArguments(t *testing.T, l Limiter) {
	for _, tt := range []struct {
		name   string
		limit  int
		window time.Duration
	}{
		{"zero limit", 0, time.Minute},
		{"negative limit", -1, time.Minute},
		{"zero window", 1, 0},
		{"negative window", 1, -time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if ok, _, err := l.RateLimiter.Allow(ctxFor(t), newID(), tt.limit, tt.window); err == nil {
				t.Errorf("Allow(%d, %v) = %v, nil; want an error", tt.limit, tt.window, ok)
			}
		})
	}
}
