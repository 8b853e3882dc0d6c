package memstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/tools/notes"
)

var t0 = time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)

func note(owner, id, title string, updated time.Time, tags ...string) *notes.Note {
	return &notes.Note{ID: id, Owner: owner, Title: title, Tags: tags, CreatedAt: t0, UpdatedAt: updated}
}

func ids(ns []*notes.Note) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

func mustPut(t *testing.T, s *Store, ns ...*notes.Note) {
	t.Helper()
	for _, n := range ns {
		if err := s.Put(t.Context(), n); err != nil {
			t.Fatalf("Put(%s/%s) = %v", n.Owner, n.ID, err)
		}
	}
}

func TestOwnerIsolation(t *testing.T) {
	s := New(0)
	ctx := t.Context()
	alice := note("alice", "same-id", "Alice's", t0)
	bob := note("bob", "same-id", "Bob's", t0)
	mustPut(t, s, alice, bob, note("alice", "only-alice", "Alice only", t0))

	for _, tt := range []struct {
		owner, id string
		want      *notes.Note // nil means ErrNotFound
	}{
		{"alice", "same-id", alice},
		{"bob", "same-id", bob},
		{"bob", "only-alice", nil},
		{"carol", "same-id", nil},
		{"", "same-id", nil},
	} {
		t.Run(tt.owner+"/"+tt.id, func(t *testing.T) {
			got, err := s.Get(ctx, tt.owner, tt.id)
			if tt.want == nil {
				if !errors.Is(err, notes.ErrNotFound) {
					t.Fatalf("Get() = %v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Get() mismatch (-want +got):\n%s", diff)
			}
		})
	}

	lists := map[string][]string{}
	for _, owner := range []string{"alice", "bob", "carol"} {
		l, err := s.List(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		lists[owner] = ids(l)
	}
	want := map[string][]string{"alice": {"only-alice", "same-id"}, "bob": {"same-id"}, "carol": {}}
	if diff := cmp.Diff(want, lists); diff != "" {
		t.Errorf("List per owner mismatch (-want +got):\n%s", diff)
	}

	// Bob cannot delete Alice's note, and deleting his own leaves hers alone.
	if err := s.Delete(ctx, "bob", "only-alice"); !errors.Is(err, notes.ErrNotFound) {
		t.Errorf("bob Delete(alice's note) = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "bob", "same-id"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "alice", "same-id"); err != nil {
		t.Errorf("alice's same-id after bob deleted his: %v", err)
	}
}

func TestListOrder(t *testing.T) {
	s := New(0)
	mustPut(t, s,
		note("alice", "old", "old", t0),
		note("alice", "newest", "newest", t0.Add(2*time.Hour)),
		note("alice", "tie-b", "tie b", t0.Add(time.Hour)),
		note("alice", "tie-a", "tie a", t0.Add(time.Hour)),
		note("alice", "older", "older", t0.Add(-time.Minute)),
	)
	got, err := s.List(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"newest", "tie-a", "tie-b", "old", "older"}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Errorf("List order (UpdatedAt desc, then ID) mismatch (-want +got):\n%s", diff)
	}

	// Replacing a note with a newer UpdatedAt moves it to the front.
	mustPut(t, s, note("alice", "older", "older, edited", t0.Add(3*time.Hour)))
	got, err = s.List(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"older", "newest", "tie-a", "tie-b", "old"}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Errorf("List order after update mismatch (-want +got):\n%s", diff)
	}
}

func TestCopies(t *testing.T) {
	s := New(0)
	ctx := t.Context()
	in := note("alice", "n1", "Title", t0, "a", "b")
	mustPut(t, s, in)
	want := note("alice", "n1", "Title", t0, "a", "b")

	// The store does not alias the note it was given.
	in.Title = "changed by caller"
	in.Tags[0] = "changed"

	for _, tt := range []struct {
		name  string
		fetch func() (*notes.Note, error)
	}{
		{"Get", func() (*notes.Note, error) { return s.Get(ctx, "alice", "n1") }},
		{"List", func() (*notes.Note, error) {
			l, err := s.List(ctx, "alice")
			if err != nil || len(l) != 1 {
				return nil, fmt.Errorf("List() = %d notes, %v", len(l), err)
			}
			return l[0], nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fetch()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%s() mismatch (-want +got):\n%s", tt.name, diff)
			}
			// Mutating what the store returned does not change the store.
			got.Title = "mutated"
			got.Tags[1] = "mutated"
			got.Tags = append(got.Tags, "extra")
			again, err := tt.fetch()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, again); diff != "" {
				t.Errorf("%s() after mutating an earlier result (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	s := New(0)
	ctx := t.Context()
	mustPut(t, s, note("alice", "n1", "one", t0))
	for _, tt := range []struct {
		name      string
		owner, id string
		want      error
	}{
		{"unknown id", "alice", "nope", notes.ErrNotFound},
		{"unknown owner", "carol", "n1", notes.ErrNotFound},
		{"own note", "alice", "n1", nil},
		{"already deleted", "alice", "n1", notes.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Delete(ctx, tt.owner, tt.id); !errors.Is(err, tt.want) {
				t.Errorf("Delete(%s, %s) = %v, want %v", tt.owner, tt.id, err, tt.want)
			}
		})
	}
	if _, err := s.Get(ctx, "alice", "n1"); !errors.Is(err, notes.ErrNotFound) {
		t.Errorf("Get(deleted) = %v, want ErrNotFound", err)
	}
}

func TestLimit(t *testing.T) {
	s := New(0)
	ctx := t.Context()
	for i := range notes.MaxNotesPerOwn {
		if err := s.Put(ctx, &notes.Note{ID: fmt.Sprint("n", i), Owner: "alice", Title: "x"}); err != nil {
			t.Fatalf("Put #%d = %v", i, err)
		}
	}
	for _, tt := range []struct {
		name string
		n    *notes.Note
		want error
	}{
		{"one more is refused", &notes.Note{ID: "extra", Owner: "alice", Title: "x"}, notes.ErrLimit},
		{"replacing an existing note is fine", &notes.Note{ID: "n0", Owner: "alice", Title: "replaced"}, nil},
		{"another owner is unaffected", &notes.Note{ID: "extra", Owner: "bob", Title: "x"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(ctx, tt.n); !errors.Is(err, tt.want) {
				t.Errorf("Put(%s/%s) = %v, want %v", tt.n.Owner, tt.n.ID, err, tt.want)
			}
		})
	}
	if _, err := s.Get(ctx, "alice", "extra"); !errors.Is(err, notes.ErrNotFound) {
		t.Errorf("the refused note was stored: Get = %v", err)
	}
	if err := s.Delete(ctx, "alice", "n1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, &notes.Note{ID: "extra", Owner: "alice", Title: "x"}); err != nil {
		t.Errorf("Put after a delete freed a slot = %v, want nil", err)
	}
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
	// With the real clock, a short TTL expires after real time passes.
	s := New(20 * time.Millisecond)
	ctx := t.Context()
	if err := s.PutExport(ctx, &notes.Export{ID: "x", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetExport(ctx, "alice", "x"); err != nil {
		t.Fatalf("GetExport right away = %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := s.GetExport(ctx, "alice", "x"); !errors.Is(err, notes.ErrNotFound) {
		t.Errorf("GetExport after the TTL = %v, want ErrNotFound", err)
	}
}

// TestConcurrent is for the race detector.
func TestConcurrent(t *testing.T) {
	s := New(0)
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			owner := fmt.Sprint("user", w%2)
			for i := range 50 {
				id := fmt.Sprint("w", w, "-", i)
				if err := s.Put(ctx, &notes.Note{ID: id, Owner: owner, Title: id, Tags: []string{"t"}}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.List(ctx, owner); err != nil {
					t.Error(err)
				}
				if n, err := s.Get(ctx, owner, id); err == nil {
					n.Tags[0] = "mutated"
				}
				s.PutExport(ctx, &notes.Export{ID: id, Owner: owner})
				s.GetExport(ctx, owner, id)
				if i%2 == 0 {
					if err := s.Delete(ctx, owner, id); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, owner := range []string{"user0", "user1"} {
		l, err := s.List(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != 4*25 {
			t.Errorf("%s has %d notes, want %d", owner, len(l), 4*25)
		}
		for _, n := range l {
			if diff := cmp.Diff([]string{"t"}, n.Tags); diff != "" {
				t.Errorf("note %s tags changed through a returned copy (-want +got):\n%s", n.ID, diff)
			}
		}
	}
}
