package memstore

import (
	"errors"
	"strings"
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
		limits := notes.Limits{Notes: 200, Bytes: 64 << 10}
		s := New(&Options{ExportTTL: time.Minute, Limits: limits})
		s.now = clock.now
		return storetest.Stores{Notes: s, Exports: s, Advance: clock.advance, ExportTTL: time.Minute, Limits: limits}
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
	s := New(&Options{ExportTTL: time.Minute})
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
		if got := New(&Options{ExportTTL: ttl}).exportTTL; got != time.Hour {
			t.Errorf("New(%v).exportTTL = %v, want 1h", ttl, got)
		}
	}
	// New's clock is time.Now: in a synctest bubble, the TTL passes on
	// the bubble's fake clock, which a sleep there moves at once.
	synctest.Test(t, func(t *testing.T) {
		s := New(&Options{ExportTTL: 20 * time.Millisecond})
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

// TestMemoryBudget: past Options.MaxBytes, all owners together, Put and
// PutExport return ErrFull; deleting notes and expiring exports free
// their bytes.
func TestMemoryBudget(t *testing.T) {
	ctx := t.Context()
	clock := &fakeClock{t: t0}
	s := New(&Options{ExportTTL: time.Minute, MaxBytes: 1000})
	s.now = clock.now
	put := func(owner, id string, size int) error {
		return s.Put(ctx, &notes.Note{ID: id, Owner: owner, Title: "t", Body: strings.Repeat("b", size-1)})
	}
	export := func(size int) error {
		return s.PutExport(ctx, &notes.Export{ID: "x", Owner: "carol", Content: strings.Repeat("x", size)})
	}
	for _, step := range []struct {
		name string
		do   func() error
		want error
	}{
		{"alice's note", func() error { return put("alice", "a", 400) }, nil},
		{"bob's note", func() error { return put("bob", "b", 400) }, nil},
		{"carol's note past the budget", func() error { return put("carol", "c", 201) }, notes.ErrFull},
		{"carol's export past the budget", func() error { return export(201) }, notes.ErrFull},
		{"carol's export to the budget", func() error { return export(200) }, nil},
		{"bob's note grown past it", func() error { return put("bob", "b", 401) }, notes.ErrFull},
		{"bob's note shrunk", func() error { return put("bob", "b", 300) }, nil},
		{"carol's note in what bob freed", func() error { return put("carol", "c", 100) }, nil},
		{"carol's second note", func() error { return put("carol", "d", 200) }, notes.ErrFull},
		{"the export expires", func() error { clock.advance(2 * time.Minute); return nil }, nil},
		{"carol's second note once the export expired", func() error { return put("carol", "d", 200) }, nil},
		{"alice deletes hers", func() error { return s.Delete(ctx, "alice", "a") }, nil},
		{"carol's third note in what alice freed", func() error { return put("carol", "e", 400) }, nil},
	} {
		if err := step.do(); !errors.Is(err, step.want) {
			t.Errorf("%s = %v, want %v", step.name, err, step.want)
		}
	}
}
