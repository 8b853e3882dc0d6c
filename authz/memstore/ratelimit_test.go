package memstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/authz/storetest"
)

func TestRateLimiterContract(t *testing.T) {
	storetest.RunRateLimiter(t, func(*testing.T) storetest.Limiter {
		clock := newClock()
		return storetest.Limiter{RateLimiter: NewRateLimiter(&Options{Now: clock.Now}), Advance: clock.Advance}
	})
}

// TestRateLimiterExact checks GCRA's arithmetic on a fake clock, where
// every wait is exact.
func TestRateLimiterExact(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	l := NewRateLimiter(&Options{Now: clock.Now})
	for i, tt := range []struct {
		advance time.Duration
		ok      bool
		retry   time.Duration
	}{
		// 3 per 30s: a burst of 3, then one every 10s.
		{0, true, 0}, {0, true, 0}, {0, true, 0},
		{0, false, 10 * time.Second},
		{4 * time.Second, false, 6 * time.Second},
		{6 * time.Second, true, 0},
		{0, false, 10 * time.Second},
		// Idle for the window: the whole burst again, not more.
		{40 * time.Second, true, 0}, {0, true, 0}, {0, true, 0},
		{0, false, 10 * time.Second},
	} {
		clock.Advance(tt.advance)
		ok, retry, err := l.Allow(ctx, "k", 3, 30*time.Second)
		if err != nil || ok != tt.ok || retry != tt.retry {
			t.Errorf("call %d: Allow = %v, %v, %v; want %v, %v, nil", i, ok, retry, err, tt.ok, tt.retry)
		}
	}
}

// TestRateLimiterBounded checks that keys are freed when they expire, and
// that a flood of fresh keys cannot grow the limiter past its bound.
func TestRateLimiterBounded(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	l := NewRateLimiter(&Options{Now: clock.Now})
	l.maxKeys = 50
	allow := func(key string) bool {
		t.Helper()
		ok, _, err := l.Allow(ctx, key, 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !allow("first") || allow("first") {
		t.Fatal("limit 1: want the first call allowed and the second refused")
	}
	for i := range 200 {
		clock.Advance(time.Millisecond)
		if !allow(fmt.Sprint("flood", i)) {
			t.Fatalf("fresh key %d refused", i)
		}
	}
	if got := l.len(); got > 50 {
		t.Errorf("len = %d after a flood of 200 keys, want at most 50", got)
	}
	// The oldest keys were freed first: "first" was, and has its budget
	// back early; the newest flood keys are still counted.
	if !allow("first") {
		t.Errorf("the oldest key was kept over newer ones")
	}
	if allow("flood199") {
		t.Errorf("the newest key was freed")
	}
	// Past the window, writes free the expired keys.
	clock.Advance(time.Minute)
	for range 50/sweepBatch + 1 {
		allow("another")
	}
	if got := l.len(); got != 1 {
		t.Errorf("len = %d after every key expired, want 1", got)
	}
}
