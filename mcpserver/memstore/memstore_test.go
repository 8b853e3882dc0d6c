package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
	"github.com/remotemcp/remotemcp/mcpserver/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) mcpserver.Stores { return memstore.New(nil) })
}

func TestRetention(t *testing.T) {
	storetest.RunRetention(t, func(_ *testing.T, maxBytes int64) storetest.Timed {
		clock := &fakeClock{now: time.Date(2026, 7, 28, 0, 0, 0, 0, time.UTC)}
		s := memstore.New(&memstore.Options{
			SessionTTL: storetest.RetentionTTL, ResumeWindow: storetest.RetentionWindow,
			MaxLoggedBytes: maxBytes, Now: clock.Now,
		})
		return storetest.Timed{
			Stores:  s,
			Advance: clock.Advance,
			Size:    func(sid string) (int, int64) { return memstore.SizeOf(s, sid) },
		}
	})
}

// A fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestSessionTTL(t *testing.T) {
	const ttl = 30 * time.Minute
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		steps []time.Duration // advance the clock by each, then Get
		want  []bool          // whether each Get finds the session
	}{
		{"fresh", []time.Duration{0}, []bool{true}},
		{"just before expiry", []time.Duration{ttl - time.Second}, []bool{true}},
		{"at expiry", []time.Duration{ttl}, []bool{true}},
		{"after expiry", []time.Duration{ttl + time.Second}, []bool{false}},
		{"Get extends the lifetime", []time.Duration{ttl - time.Minute, ttl - time.Minute, ttl - time.Minute}, []bool{true, true, true}},
		{"expired stays expired", []time.Duration{ttl + time.Second, 0}, []bool{false, false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2026, 7, 28, 0, 0, 0, 0, time.UTC)}
			s := memstore.New(&memstore.Options{SessionTTL: ttl, Now: clock.Now}).Sessions
			if err := s.Create(ctx, &mcpserver.Session{ID: "s1", Subject: "alice"}); err != nil {
				t.Fatalf("Create: %v", err)
			}
			var got []bool
			for _, d := range tt.steps {
				clock.Advance(d)
				_, err := s.Get(ctx, "s1")
				if err != nil && !errors.Is(err, mcpserver.ErrNotFound) {
					t.Fatalf("Get: %v", err)
				}
				got = append(got, err == nil)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Get found the session (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSessionTTLUpdate(t *testing.T) {
	const ttl = 30 * time.Minute
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 7, 28, 0, 0, 0, 0, time.UTC)}
	s := memstore.New(&memstore.Options{SessionTTL: ttl, Now: clock.Now}).Sessions
	if err := s.Create(ctx, &mcpserver.Session{ID: "s1", Subject: "alice"}); err != nil {
		t.Fatalf("Create: %v", err)
	}

	// Update extends the lifetime like Get.
	clock.Advance(ttl - time.Minute)
	if err := s.Update(ctx, "s1", func(s *mcpserver.Session) { s.Subscriptions = []string{"notes://alice/1"} }); err != nil {
		t.Fatalf("Update: %v", err)
	}
	clock.Advance(ttl - time.Minute)
	got, err := s.Get(ctx, "s1")
	if err != nil {
		t.Fatalf("Get after Update: %v", err)
	}
	if diff := cmp.Diff([]string{"notes://alice/1"}, got.Subscriptions); diff != "" {
		t.Errorf("Subscriptions (-want +got):\n%s", diff)
	}

	// An expired session is gone for Update, and its ID may be reused.
	clock.Advance(ttl + time.Second)
	if err := s.Update(ctx, "s1", func(*mcpserver.Session) {}); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Update of an expired session error = %v, want ErrNotFound", err)
	}
	if err := s.Create(ctx, &mcpserver.Session{ID: "s1", Subject: "bob"}); err != nil {
		t.Fatalf("Create over an expired session: %v", err)
	}
	got, err = s.Get(ctx, "s1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Subject != "bob" || got.Subscriptions != nil {
		t.Errorf("Get after re-Create = %+v, want a fresh record for bob", got)
	}
}

func TestSessionTTLDuplicateCreate(t *testing.T) {
	const ttl = 30 * time.Minute
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 7, 28, 0, 0, 0, 0, time.UTC)}
	s := memstore.New(&memstore.Options{SessionTTL: ttl, Now: clock.Now}).Sessions
	if err := s.Create(ctx, &mcpserver.Session{ID: "s1", Subject: "alice"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	clock.Advance(ttl - time.Second)
	if err := s.Create(ctx, &mcpserver.Session{ID: "s1", Subject: "bob"}); err == nil {
		t.Errorf("Create over a live session succeeded")
	}
}

func TestMaxEventsPerStream(t *testing.T) {
	ctx := context.Background()
	l := memstore.New(&memstore.Options{MaxEventsPerStream: 3}).Events
	if _, err := l.WriteStream(ctx, "s", "r", &mcpserver.StreamWrite{}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		seq, err := l.WriteStream(ctx, "s", "r", &mcpserver.StreamWrite{Events: [][]byte{fmt.Appendf(nil, "%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if seq != int64(i) {
			t.Errorf("Append %d = seq %d", i, seq)
		}
	}
	for _, tt := range []struct {
		name  string
		after int64
		want  []mcpserver.Event
	}{
		{"oldest dropped", 0, []mcpserver.Event{{Seq: 3, Data: []byte("3")}, {Seq: 4, Data: []byte("4")}, {Seq: 5, Data: []byte("5")}}},
		{"after a kept event", 4, []mcpserver.Event{{Seq: 5, Data: []byte("5")}}},
		{"after the last", 5, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := l.Read(ctx, "s", "r", tt.after, 0)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Read(after %d) (-want +got):\n%s", tt.after, diff)
			}
		})
	}
}

// TestIdleEventLogsForgotten checks that the event logs of a session that
// expired without a DELETE do not accumulate: they are collected while
// other sessions write.
func TestIdleEventLogsForgotten(t *testing.T) {
	const ttl = time.Minute
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 7, 28, 0, 0, 0, 0, time.UTC)}
	l := memstore.New(&memstore.Options{SessionTTL: ttl, Now: clock.Now}).Events
	if _, err := l.WriteStream(ctx, "idle", "r", &mcpserver.StreamWrite{Events: [][]byte{[]byte(`1`)}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(ttl + time.Second)
	// Collection is amortized over writes; a few hundred always trigger it.
	for i := range 1024 {
		if _, err := l.WriteStream(ctx, "busy", "r", &mcpserver.StreamWrite{Events: [][]byte{fmt.Appendf(nil, "%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := l.Read(ctx, "idle", "r", 0, 0); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Read of an idle session's stream error = %v, want ErrNotFound", err)
	}
	if _, _, err := l.Read(ctx, "busy", "r", 0, 0); err != nil {
		t.Errorf("Read of a busy session's stream: %v", err)
	}
}
