package redisstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz/redisstore"
	"github.com/remotemcp/remotemcp/internal/redistest"
)

// TestLocker: two "replicas" (two clients) never hold one grant's lock at
// once; a dead holder's lock expires; a waiting Lock gives up with its
// context; unlock releases only its own lock.
func TestLocker(t *testing.T) {
	srv := redistest.Start(t)
	client := func() redis.UniversalClient {
		o, err := redis.ParseURL(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		o.ContextTimeoutEnabled = true
		rdb := redis.NewClient(o)
		t.Cleanup(func() { rdb.Close() })
		return rdb
	}
	a := redisstore.NewLocker(client(), &redisstore.LockerOptions{KeyPrefix: "lt:", TTL: 2 * time.Second, Poll: 5 * time.Millisecond})
	b := redisstore.NewLocker(client(), &redisstore.LockerOptions{KeyPrefix: "lt:", TTL: 2 * time.Second, Poll: 5 * time.Millisecond})

	pinger := client()
	var inside, max atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			unlock, err := l.Lock(t.Context(), "grant-1")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			if n > max.Load() {
				max.Store(n)
			}
			// Hold the lock across a round trip to Redis, while the
			// others poll for it.
			if err := pinger.Ping(t.Context()).Err(); err != nil {
				t.Error(err)
			}
			inside.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if m := max.Load(); m != 1 {
		t.Errorf("%d holders at once, want 1", m)
	}

	// Another grant's lock is independent.
	u1, err := a.Lock(t.Context(), "grant-2")
	if err != nil {
		t.Fatal(err)
	}
	u2, err := b.Lock(t.Context(), "grant-3")
	if err != nil {
		t.Fatal(err)
	}
	u2()

	// A waiter gives up with its context while grant-2 is held.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(ctx, "grant-2"); err == nil {
		t.Fatal("Lock succeeded while another replica held the lock")
	}
	// The holder "dies" (never unlocks): the lock expires by itself.
	start := time.Now()
	u3, err := b.Lock(t.Context(), "grant-2")
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("took a held lock after %v; the TTL is 2s", waited)
	}
	// The dead holder's late unlock must not release the new holder's lock.
	u1()
	ctx2, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel2()
	if _, err := a.Lock(ctx2, "grant-2"); err == nil {
		t.Error("a stale unlock released another holder's lock")
	}
	u3()
}
