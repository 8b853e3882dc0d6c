package memstore

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/tools/notes"
	"github.com/remotemcp/remotemcp/tools/notes/storetest"
)

var t0 = time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)

// TestContract runs the contract suite on a fake clock.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		clock := &fakeClock{t: t0}
		s := New(time.Minute)
		s.now = clock.now
		return storetest.Stores{Notes: s, Exports: s, Advance: clock.advance, ExportTTL: time.Minute}
	})
}

// fakeClock is a settable clock for the store's now field.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestExportExpiry checks the exact boundary, which only a fake clock can,
// and that storing an export sweeps out expired ones.
func TestExportExpiry(t *testing.T) {
	ctx := t.Context()
	clock := &fakeClock{t: t0}
	s := New(time.Minute)
	s.now = clock.now
	e := &notes.Export{ID: "x1", Owner: "alice", MIMEType: "text/markdown", Content: "# Notes export\n", Count: 0, CreatedAt: t0}
	if err := s.PutExport(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.Content = "changed by caller" // the store keeps its own copy

	want := &notes.Export{ID: "x1", Owner: "alice", MIMEType: "text/markdown", Content: "# Notes export\n", CreatedAt: t0}
	for _, tt := range []struct {
		name      string
		advance   time.Duration
		owner, id string
		found     bool
	}{
		{"fresh", 0, "alice", "x1", true},
		{"another owner", 0, "bob", "x1", false},
		{"unknown id", 0, "alice", "x2", false},
		{"just before expiry", 59 * time.Second, "alice", "x1", true},
		{"exactly at expiry", time.Second, "alice", "x1", true},
		{"after expiry", time.Nanosecond, "alice", "x1", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock.advance(tt.advance)
			got, err := s.GetExport(ctx, tt.owner, tt.id)
			if !tt.found {
				if !errors.Is(err, notes.ErrNotFound) {
					t.Fatalf("GetExport() = %v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetExport() mismatch (-want +got):\n%s", diff)
			}
		})
	}

	// Storing another export sweeps out the expired one.
	if err := s.PutExport(ctx, &notes.Export{ID: "x2", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	n := len(s.exports)
	s.mu.Unlock()
	if n != 1 {
		t.Errorf("%d exports kept after a sweep, want 1", n)
	}
}

func TestDefaultExportTTL(t *testing.T) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		if got := New(ttl).exportTTL; got != time.Hour {
			t.Errorf("New(%v).exportTTL = %v, want 1h", ttl, got)
		}
	}
	// New's clock is time.Now: in a synctest bubble, the TTL passes on
	// the bubble's fake clock, which a sleep there moves at once.
	synctest.Test(t, func(t *testing.T) {
		s := New(20 * time.Millisecond)
		ctx := t.Context()
		if err := s.PutExport(ctx, &notes.Export{ID: "x", Owner: "alice"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetExport(ctx, "alice", "x"); err != nil {
			t.Fatalf("GetExport right away = %v", err)
		}
		time.Sleep(50 * time.Millisecond) // synctest time: returns at once
		if _, err := s.GetExport(ctx, "alice", "x"); !errors.Is(err, notes.ErrNotFound) {
			t.Errorf("GetExport after the TTL = %v, want ErrNotFound", err)
		}
	})
}
