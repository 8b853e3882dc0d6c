package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz/redisstore"
	"github.com/remotemcp/remotemcp/authz/storetest"
	"github.com/remotemcp/remotemcp/internal/redistest"
)

// newRateLimitClient returns a client of srv, closed when the test ends.
func newRateLimitClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestRateLimiterContract(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newRateLimitClient(t, srv)
	// The limiter's clock is the Redis server's (TIME, so that replicas
	// agree), which no test can move: time passes for real here, for the
	// few short windows the suite uses.
	storetest.RunRateLimiter(t, func(*testing.T) storetest.Limiter {
		return storetest.Limiter{RateLimiter: redisstore.NewRateLimiter(rdb, nil), Advance: time.Sleep}
	})
}

// TestRateLimiterReplicas: two replicas (two limiters, each with its own
// connection) on one Redis share one budget per key.
func TestRateLimiterReplicas(t *testing.T) {
	srv := redistest.Start(t)
	replicas := []*redisstore.RateLimiter{
		redisstore.NewRateLimiter(newRateLimitClient(t, srv), nil),
		redisstore.NewRateLimiter(newRateLimitClient(t, srv), nil),
	}
	ctx := t.Context()
	const limit = 6
	allowed := 0
	for i := range 2 * limit {
		ok, _, err := replicas[i%2].Allow(ctx, "token:addr:192.0.2.1", limit, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			allowed++
		}
	}
	if allowed != limit {
		t.Errorf("%d of %d requests across two replicas allowed, want %d", allowed, 2*limit, limit)
	}
	// Another prefix (another deployment on the same Redis) has its own
	// budgets.
	other := redisstore.NewRateLimiter(newRateLimitClient(t, srv), &redisstore.Options{KeyPrefix: "other:"})
	if ok, _, err := other.Allow(ctx, "token:addr:192.0.2.1", limit, time.Hour); err != nil || !ok {
		t.Errorf("Allow under another prefix = %v, %v; want allowed", ok, err)
	}
}

// TestRateLimiterKeys: the key has a hash tag, and a TTL no longer than
// the window.
func TestRateLimiterKeys(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newRateLimitClient(t, srv)
	l := redisstore.NewRateLimiter(rdb, nil)
	ctx := t.Context()
	const window = time.Minute
	for range 3 {
		if ok, _, err := l.Allow(ctx, "register:addr:192.0.2.1", 3, window); err != nil || !ok {
			t.Fatalf("Allow = %v, %v; want allowed", ok, err)
		}
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := redisstore.DefaultKeyPrefix + "{ratelimit:register:addr:192.0.2.1}"; len(keys) != 1 || keys[0] != want {
		t.Fatalf("keys = %q, want [%q]", keys, want)
	}
	ttl, err := rdb.PTTL(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Three of three used: the key lives until the bucket is full again.
	if ttl <= window-5*time.Second || ttl > window {
		t.Errorf("PTTL = %v, want about %v", ttl, window)
	}
}

// TestRateLimiterRedisDown: a limiter whose Redis is gone returns an error
// (the Server then lets the request through), and works again, with fresh
// budgets, once Redis is back empty.
func TestRateLimiterRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	l := redisstore.NewRateLimiter(newRateLimitClient(t, srv), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if ok, _, err := l.Allow(ctx, "k", 1, time.Hour); err != nil || !ok {
		t.Fatalf("Allow = %v, %v; want allowed", ok, err)
	}
	srv.Kill()
	if ok, _, err := l.Allow(ctx, "k", 1, time.Hour); err == nil {
		t.Fatalf("Allow with Redis down = %v, nil; want an error", ok)
	} else if !strings.Contains(err.Error(), "rate limit k") {
		t.Errorf("error %q does not say what failed", err)
	}
	srv.Restart()
	var err error
	// Restart returns once the server answers PING. The client's pooled
	// connections to the old process fail once each and are dropped, and
	// it dials again (one failed dial, while Redis was down, is far from
	// the pool's limit): a few tries, back to back, get through.
	for range 50 {
		var ok bool
		if ok, _, err = l.Allow(ctx, "k", 1, time.Hour); err == nil {
			if !ok {
				t.Errorf("Allow after an empty restart = refused, want allowed")
			}
			return
		}
	}
	t.Fatalf("Allow after the restart: %v", err)
}
