// Package storetest is the contract test suite that every implementation of
// notes.Store and notes.ExportStore must pass: the in-process memstore and
// any shared store (Redis) alike. It tests the behaviour the tools,
// resources and prompts rely on, as documented in package notes, never an
// implementation's internals.
//
// Beyond the interfaces' documentation, the suite requires:
//
//   - An owner is any string, compared byte for byte: owners that differ
//     only in case, in characters a store might use as separators, or that
//     are very long never see each other's notes.
//   - Notes with the same UpdatedAt are listed in ID order.
//   - A missing note or export is reported as notes.ErrNotFound and nothing
//     else: no backend error (such as redis.Nil) is wrapped along with it.
//   - When an owner holds Limits.Exports exports, storing another drops
//     the one stored first (the suite stores them in CreatedAt order).
//   - The limits on notes (Limits.Notes, Limits.Bytes) hold under racing
//     Puts.
//   - Records come back field for field as they were stored (times compare
//     with time.Time.Equal), and neither the records a store is given nor
//     those it returns are shared with it. Owners and IDs are kept byte for
//     byte; the suite's other strings are valid UTF-8 (notes.Validate
//     ensures that for notes), so a store may encode them as JSON.
//
// Time is the implementation's: the suite lets it pass through
// Stores.Advance, and it reads the exports' lifetime from Stores.ExportTTL.
// So a store on a fake clock advances it, and one on a real clock (Redis)
// sleeps.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/remotemcp/remotemcp/tools/notes"
)

// Stores is one implementation under test and control of its clock.
type Stores struct {
	Notes   notes.Store
	Exports notes.ExportStore

	// Advance lets at least d pass on the stores' clock: a store with an
	// injectable clock moves it; one on a server's clock it cannot set
	// (Redis's) moves its records d into the future instead. REQUIRED.
	Advance func(d time.Duration)
	// ExportTTL is how long the stores keep an export. The suite checks
	// that an export is still there a quarter of ExportTTL after it was
	// stored, so on a real clock ExportTTL must be long enough for a few
	// dozen store round trips to take less than ExportTTL/4 (a second is
	// plenty). REQUIRED.
	ExportTTL time.Duration
	// Limits are the per-owner limits the stores were built with; zero
	// fields mean notes' defaults. The suite fills owners to them.
	Limits notes.Limits
}

// workers is how many goroutines race for the last free slots of an owner.
const workers = 32

// Run runs the contract tests. newStores is called once per subtest and must
// return stores that are ready to use; it should register its own cleanup
// with t. Stores may share their data between calls (a Redis server) as
// long as each call gets its own namespace: the subtests use fixed owner
// names.
func Run(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Helper()
	t.Run("Complete", func(t *testing.T) {
		s := newStores(t)
		if s.Notes == nil || s.Exports == nil || s.Advance == nil || s.ExportTTL <= 0 {
			t.Fatalf("newStores returned incomplete Stores: %+v", s)
		}
	})
	for _, tt := range []struct {
		name string
		test func(t *testing.T, s Stores)
	}{
		{"OwnerIsolation", testOwnerIsolation},
		{"PutCreateReplace", testPutCreateReplace},
		{"RoundTrip", testRoundTrip},
		{"ListOrder", testListOrder},
		{"Delete", testDelete},
		{"Copies", testCopies},
		{"Limit", testLimit},
		{"LimitConcurrent", testLimitConcurrent},
		{"Quota", testQuota},
		{"Concurrent", testConcurrent},
		{"ExportIsolation", testExportIsolation},
		{"ExportLimit", testExportLimit},
		{"ExportExpiry", testExportExpiry},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStores(t)
			s.Limits = s.Limits.WithDefaults()
			tt.test(t, s)
		})
	}
}

// t0 is a fixed time for the time fields of records.
var t0 = time.Date(2026, 7, 28, 12, 30, 45, 123456789, time.UTC)

// ctxFor returns a context for one subtest, bounded so that a store that
// hangs fails the test instead of stalling it.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

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

func mustPut(t *testing.T, s notes.Store, ns ...*notes.Note) {
	t.Helper()
	for _, n := range ns {
		if err := s.Put(ctxFor(t), n); err != nil {
			t.Fatalf("Put(%q/%s) = %v", n.Owner, n.ID, err)
		}
	}
}

// fill gives owner n new notes with IDs prefix0, prefix1, …, from several
// goroutines so that a networked store fills quickly.
func fill(t *testing.T, s notes.Store, owner, prefix string, n int) {
	t.Helper()
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	const fillers = 16
	for w := range fillers {
		wg.Go(func() {
			for i := w; i < n; i += fillers {
				err := s.Put(ctx, &notes.Note{ID: fmt.Sprint(prefix, i), Owner: owner, Title: "x", CreatedAt: t0, UpdatedAt: t0})
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("put #%d = %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		t.Fatalf("filling %q with %d notes: %v", owner, n, first)
	}
}

// leaves returns the errors at the ends of err's wrap tree.
func leaves(err error) []error {
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			return leaves(inner)
		}
	case interface{ Unwrap() []error }:
		var out []error
		for _, inner := range u.Unwrap() {
			out = append(out, leaves(inner)...)
		}
		return out
	}
	return []error{err}
}

// isNotFound reports whether err is notes.ErrNotFound, possibly wrapped,
// with no other error (a backend's) wrapped along with it.
func isNotFound(err error) bool {
	l := leaves(err)
	return err != nil && len(l) == 1 && l[0] == notes.ErrNotFound
}

// owners are owner IDs that a store keying on them might confuse: equal
// after case folding, trimming or escaping, prefixes of each other,
// containing Redis hash-tag braces and key separators, not UTF-8, or long.
var owners = []string{
	"alice", "Alice", "alice ", "alic", "alice:notes", "alice}", "{alice}", "{n:alice}",
	"al\x00ice", "al\\ice", "", "*", "user|123", "ü", "\xffalice", strings.Repeat("a", 10000),
}

func testOwnerIsolation(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	want := map[string][]*notes.Note{}
	for i, owner := range owners {
		same := note(owner, "same-id", fmt.Sprintf("%d's", i), t0)
		mine := note(owner, fmt.Sprint("only-", i), fmt.Sprintf("%d only", i), t0.Add(time.Duration(i+1)*time.Second))
		mustPut(t, s.Notes, same, mine)
		want[owner] = []*notes.Note{mine, same}
	}

	for i, owner := range owners {
		for _, n := range want[owner] {
			got, err := s.Notes.Get(ctx, owner, n.ID)
			if err != nil {
				t.Fatalf("owner #%d Get(%s) = %v", i, n.ID, err)
			}
			if diff := cmp.Diff(n, got); diff != "" {
				t.Errorf("owner #%d Get(%s) mismatch (-want +got):\n%s", i, n.ID, diff)
			}
		}
		// Another owner's note is not found, even by an owner with a
		// note of the same ID.
		other := fmt.Sprint("only-", (i+1)%len(owners))
		if got, err := s.Notes.Get(ctx, owner, other); !isNotFound(err) {
			t.Errorf("owner #%d Get(%s) = %v, %v; want ErrNotFound", i, other, got, err)
		}
		got, err := s.Notes.List(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[owner], got); diff != "" {
			t.Errorf("owner #%d List mismatch (-want +got):\n%s", i, diff)
		}
	}
	if got, err := s.Notes.List(ctx, "carol"); err != nil || len(got) != 0 {
		t.Errorf("List(unknown owner) = %v, %v; want no notes", ids(got), err)
	}

	// No owner can delete another's note, and deleting one's own leaves
	// everyone else's notes with the same ID alone.
	for i, owner := range owners {
		other := fmt.Sprint("only-", (i+1)%len(owners))
		if err := s.Notes.Delete(ctx, owner, other); !isNotFound(err) {
			t.Errorf("owner #%d Delete(%s) = %v, want ErrNotFound", i, other, err)
		}
	}
	if err := s.Notes.Delete(ctx, "alice", "same-id"); err != nil {
		t.Fatal(err)
	}
	for i, owner := range owners[1:] {
		if _, err := s.Notes.Get(ctx, owner, "same-id"); err != nil {
			t.Errorf("owner #%d same-id after alice deleted hers: %v", i+1, err)
		}
		l, err := s.Notes.List(ctx, owner)
		if err != nil || len(l) != 2 {
			t.Errorf("owner #%d List after others' deletes = %v, %v; want 2 notes", i+1, ids(l), err)
		}
	}
}

func testPutCreateReplace(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	first := &notes.Note{ID: "n1", Owner: "alice", Title: "first", Body: "one", Tags: []string{"a"}, CreatedAt: t0, UpdatedAt: t0}
	mustPut(t, s.Notes, first)
	second := &notes.Note{ID: "n1", Owner: "alice", Title: "second", Body: "two", CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)}
	mustPut(t, s.Notes, second)

	got, err := s.Notes.Get(ctx, "alice", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(second, got); diff != "" {
		t.Errorf("Get after replace mismatch (-want +got):\n%s", diff)
	}
	l, err := s.Notes.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*notes.Note{second}, l); diff != "" {
		t.Errorf("List after replace mismatch (-want +got):\n%s", diff)
	}
}

func testRoundTrip(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	for _, n := range []*notes.Note{
		{ID: "full", Owner: "alice", Title: "Grüße, 世界 🌍", Body: strings.Repeat("body \"quoted\" \\ \n\t\x00", notes.MaxBody/20),
			Tags: []string{"a", "ü", strings.Repeat("t", notes.MaxTag)}, CreatedAt: t0.In(zone), UpdatedAt: t0.Add(time.Nanosecond).In(zone)},
		{ID: "minimal", Owner: "alice", Title: "t"},
		{ID: "no-tags", Owner: "alice", Title: "t", Body: "b", CreatedAt: t0, UpdatedAt: t0},
	} {
		t.Run(n.ID, func(t *testing.T) {
			mustPut(t, s.Notes, n)
			got, err := s.Notes.Get(ctx, n.Owner, n.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(n, got); diff != "" {
				t.Errorf("Get mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func testListOrder(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	mustPut(t, s.Notes,
		note("alice", "old", "old", t0),
		note("alice", "newest", "newest", t0.Add(2*time.Hour)),
		note("alice", "tie-b", "tie b", t0.Add(time.Hour)),
		note("alice", "tie-a", "tie a", t0.Add(time.Hour)),
		note("alice", "ns-later", "a nanosecond later", t0.Add(time.Nanosecond)),
		note("alice", "older", "older", t0.Add(-time.Minute)),
	)
	got, err := s.Notes.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"newest", "tie-a", "tie-b", "ns-later", "old", "older"}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Errorf("List order (UpdatedAt desc, then ID) mismatch (-want +got):\n%s", diff)
	}

	// Replacing a note with a newer UpdatedAt moves it to the front, and
	// one with an older UpdatedAt moves it back.
	mustPut(t, s.Notes,
		note("alice", "older", "older, edited", t0.Add(3*time.Hour)),
		note("alice", "newest", "newest, backdated", t0.Add(-time.Hour)),
	)
	got, err = s.Notes.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"older", "tie-a", "tie-b", "ns-later", "old", "newest"}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Errorf("List order after updates mismatch (-want +got):\n%s", diff)
	}
}

func testDelete(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	mustPut(t, s.Notes, note("alice", "n1", "one", t0), note("alice", "n2", "two", t0))
	for _, tt := range []struct {
		name      string
		owner, id string
		want      error
	}{
		{"unknown id", "alice", "nope", notes.ErrNotFound},
		{"unknown owner", "carol", "n1", notes.ErrNotFound},
		{"own note", "alice", "n1", nil},
		{"already deleted", "alice", "n1", notes.ErrNotFound},
		{"the last note", "alice", "n2", nil},
		{"after the last note", "alice", "n2", notes.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Notes.Delete(ctx, tt.owner, tt.id)
			if tt.want == nil && err != nil || tt.want != nil && !isNotFound(err) {
				t.Errorf("Delete(%s, %s) = %v, want %v", tt.owner, tt.id, err, tt.want)
			}
		})
	}
	for _, id := range []string{"n1", "n2"} {
		if got, err := s.Notes.Get(ctx, "alice", id); !isNotFound(err) {
			t.Errorf("Get(deleted %s) = %v, %v; want ErrNotFound", id, got, err)
		}
	}
	if l, err := s.Notes.List(ctx, "alice"); err != nil || len(l) != 0 {
		t.Errorf("List after deleting everything = %v, %v; want no notes", ids(l), err)
	}
	// A deleted ID can be used again.
	mustPut(t, s.Notes, note("alice", "n1", "one again", t0))
	if got, err := s.Notes.Get(ctx, "alice", "n1"); err != nil || got.Title != "one again" {
		t.Errorf("Get(recreated) = %v, %v", got, err)
	}
}

func testCopies(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	in := note("alice", "n1", "Title", t0, "a", "b")
	mustPut(t, s.Notes, in)
	want := note("alice", "n1", "Title", t0, "a", "b")

	// The store does not alias the note it was given.
	in.Title = "changed by caller"
	in.Tags[0] = "changed"

	for _, tt := range []struct {
		name  string
		fetch func() (*notes.Note, error)
	}{
		{"Get", func() (*notes.Note, error) { return s.Notes.Get(ctx, "alice", "n1") }},
		{"List", func() (*notes.Note, error) {
			l, err := s.Notes.List(ctx, "alice")
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

	t.Run("Export", func(t *testing.T) {
		in := &notes.Export{ID: "x1", Owner: "alice", MIMEType: "text/markdown", Content: "# Notes\n", Count: 3, CreatedAt: t0}
		if err := s.Exports.PutExport(ctx, in); err != nil {
			t.Fatal(err)
		}
		want := *in
		in.Content = "changed by caller"
		got, err := s.Exports.GetExport(ctx, "alice", "x1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Fatalf("GetExport() mismatch (-want +got):\n%s", diff)
		}
		got.Content = "mutated"
		again, err := s.Exports.GetExport(ctx, "alice", "x1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&want, again); diff != "" {
			t.Errorf("GetExport() after mutating an earlier result (-want +got):\n%s", diff)
		}
	})
}

func testLimit(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	fill(t, s.Notes, "alice", "n", s.Limits.Notes)
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
			if err := s.Notes.Put(ctx, tt.n); !errors.Is(err, tt.want) {
				t.Errorf("Put(%s/%s) = %v, want %v", tt.n.Owner, tt.n.ID, err, tt.want)
			}
		})
	}
	if got, err := s.Notes.Get(ctx, "alice", "extra"); !isNotFound(err) {
		t.Errorf("the refused note was stored: Get = %v, %v", got, err)
	}
	if got, err := s.Notes.Get(ctx, "alice", "n0"); err != nil || got.Title != "replaced" {
		t.Errorf("Get(replaced at the limit) = %v, %v", got, err)
	}
	if l, err := s.Notes.List(ctx, "alice"); err != nil || len(l) != s.Limits.Notes {
		t.Errorf("List at the limit = %d notes, %v; want %d", len(l), err, s.Limits.Notes)
	}
	if err := s.Notes.Delete(ctx, "alice", "n1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Notes.Put(ctx, &notes.Note{ID: "extra", Owner: "alice", Title: "x"}); err != nil {
		t.Errorf("Put after a delete freed a slot = %v, want nil", err)
	}
	if err := s.Notes.Put(ctx, &notes.Note{ID: "extra2", Owner: "alice", Title: "x"}); !errors.Is(err, notes.ErrLimit) {
		t.Errorf("Put once the freed slot is taken = %v, want ErrLimit", err)
	}
}

// testQuota fills an owner's Limits.Bytes: a note that would pass it is
// refused with ErrQuota and not stored; replacing a note counts its new
// size instead of its old, and deleting one frees its bytes.
func testQuota(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	chunk := s.Limits.Bytes / 4
	body := strings.Repeat("b", chunk-1)                // with the title "t": chunk bytes
	over := strings.Repeat("x", s.Limits.Bytes-4*chunk) // one byte too many once full
	put := func(owner, id, body string) error {
		return s.Notes.Put(ctx, &notes.Note{ID: id, Owner: owner, Title: "t", Body: body, CreatedAt: t0, UpdatedAt: t0})
	}
	for i := range 4 {
		if err := put("alice", fmt.Sprint("q", i), body); err != nil {
			t.Fatalf("Put #%d of 4 notes of a quarter of the quota = %v", i, err)
		}
	}
	if err := put("alice", "over", over); !errors.Is(err, notes.ErrQuota) {
		t.Errorf("Put past the quota = %v, want ErrQuota", err)
	}
	if got, err := s.Notes.Get(ctx, "alice", "over"); !isNotFound(err) {
		t.Errorf("the refused note was stored: Get = %v, %v", got, err)
	}
	if err := put("alice", "q0", body+over+"x"); !errors.Is(err, notes.ErrQuota) {
		t.Errorf("Put growing a note past the quota = %v, want ErrQuota", err)
	}
	if err := put("bob", "q0", body); err != nil {
		t.Errorf("another owner's Put = %v, want nil", err)
	}
	if err := put("alice", "q0", ""); err != nil {
		t.Errorf("Put shrinking a note at the quota = %v, want nil", err)
	}
	if err := put("alice", "more", body[:chunk-2]); err != nil {
		t.Errorf("Put into the bytes a shrunk note freed = %v, want nil", err)
	}
	if err := put("alice", "over", over); !errors.Is(err, notes.ErrQuota) {
		t.Errorf("Put past the quota again = %v, want ErrQuota", err)
	}
	if err := s.Notes.Delete(ctx, "alice", "q1"); err != nil {
		t.Fatal(err)
	}
	if err := put("alice", "over", body); err != nil {
		t.Errorf("Put into the bytes a deleted note freed = %v, want nil", err)
	}
}

// testLimitConcurrent races many new notes for an owner's last few slots:
// the check and the write must be one atomic step, so exactly as many win
// as there were free slots. Replacing existing notes at the same time
// always succeeds.
func testLimitConcurrent(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	const free = 5
	fill(t, s.Notes, "alice", "n", s.Limits.Notes-free)
	start := make(chan struct{})
	errs := make([]error, 2*workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			errs[w] = s.Notes.Put(ctx, &notes.Note{ID: fmt.Sprint("new", w), Owner: "alice", Title: "new"})
		})
		wg.Go(func() {
			<-start
			errs[workers+w] = s.Notes.Put(ctx, &notes.Note{ID: fmt.Sprint("n", w), Owner: "alice", Title: "replaced"})
		})
	}
	close(start)
	wg.Wait()

	won := 0
	for w, err := range errs[:workers] {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, notes.ErrLimit):
			t.Errorf("new note #%d: Put = %v, want nil or ErrLimit", w, err)
		}
	}
	if won != free {
		t.Errorf("%d of %d racing new notes were stored in %d free slots", won, workers, free)
	}
	for w, err := range errs[workers:] {
		if err != nil {
			t.Errorf("replacing note n%d at the limit: Put = %v", w, err)
		}
	}
	l, err := s.Notes.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != s.Limits.Notes {
		t.Errorf("alice has %d notes, want the limit %d", len(l), s.Limits.Notes)
	}
}

// testConcurrent mixes every operation from several goroutines, for the
// race detector and for stores that read-modify-write.
func testConcurrent(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			owner := fmt.Sprint("user", w%2)
			for i := range 50 {
				id := fmt.Sprint("w", w, "-", i)
				if err := s.Notes.Put(ctx, &notes.Note{ID: id, Owner: owner, Title: id, Tags: []string{"t"}}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Notes.List(ctx, owner); err != nil {
					t.Error(err)
				}
				if n, err := s.Notes.Get(ctx, owner, id); err != nil {
					t.Error(err)
				} else {
					n.Tags[0] = "mutated"
				}
				if err := s.Exports.PutExport(ctx, &notes.Export{ID: id, Owner: owner}); err != nil {
					t.Error(err)
				}
				if _, err := s.Exports.GetExport(ctx, owner, id); err != nil && !isNotFound(err) {
					t.Error(err) // another goroutine may have pushed it out
				}
				if i%2 == 0 {
					if err := s.Notes.Delete(ctx, owner, id); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, owner := range []string{"user0", "user1"} {
		l, err := s.Notes.List(ctx, owner)
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

func export(owner, id string, created time.Time) *notes.Export {
	return &notes.Export{ID: id, Owner: owner, MIMEType: "text/markdown", Content: fmt.Sprintf("# %q/%s\n", owner, id), Count: 1, CreatedAt: created}
}

func testExportIsolation(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	for _, owner := range owners {
		if err := s.Exports.PutExport(ctx, export(owner, "x1", t0)); err != nil {
			t.Fatal(err)
		}
	}
	for i, owner := range owners {
		got, err := s.Exports.GetExport(ctx, owner, "x1")
		if err != nil {
			t.Fatalf("owner #%d GetExport = %v", i, err)
		}
		if diff := cmp.Diff(export(owner, "x1", t0), got); diff != "" {
			t.Errorf("owner #%d GetExport mismatch (-want +got):\n%s", i, diff)
		}
	}
	for _, tt := range []struct{ name, owner, id string }{
		{"unknown owner", "carol", "x1"},
		{"unknown id", "alice", "x2"},
		{"a note's id", "alice", "n1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.id == "n1" {
				mustPut(t, s.Notes, note("alice", "n1", "a note, not an export", t0))
			}
			if got, err := s.Exports.GetExport(ctx, tt.owner, tt.id); !isNotFound(err) {
				t.Errorf("GetExport(%s, %s) = %v, %v; want ErrNotFound", tt.owner, tt.id, got, err)
			}
		})
	}
}

func testExportLimit(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	if err := s.Exports.PutExport(ctx, export("bob", "x0", t0)); err != nil {
		t.Fatal(err)
	}
	for i := range s.Limits.Exports + 2 {
		if err := s.Exports.PutExport(ctx, export("alice", fmt.Sprint("x", i), t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatalf("PutExport #%d = %v", i, err)
		}
	}
	for i := range s.Limits.Exports + 2 {
		id := fmt.Sprint("x", i)
		got, err := s.Exports.GetExport(ctx, "alice", id)
		if i < 2 {
			if !isNotFound(err) {
				t.Errorf("GetExport(%s), one of the 2 oldest of %d = %v, %v; want ErrNotFound", id, s.Limits.Exports+2, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("GetExport(%s) = %v", id, err)
		}
	}
	if _, err := s.Exports.GetExport(ctx, "bob", "x0"); err != nil {
		t.Errorf("bob's export after alice reached her limit: %v", err)
	}
}

func testExportExpiry(t *testing.T, s Stores) {
	ctx := ctxFor(t)
	e := export("alice", "x1", t0)
	if err := s.Exports.PutExport(ctx, e); err != nil {
		t.Fatal(err)
	}
	want := *e
	for _, tt := range []struct {
		name    string
		advance time.Duration
		found   bool
	}{
		{"fresh", 0, true},
		{"a quarter of the TTL later", s.ExportTTL / 4, true},
		{"after the TTL", s.ExportTTL, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s.Advance(tt.advance)
			got, err := s.Exports.GetExport(ctx, "alice", "x1")
			if !tt.found {
				if !isNotFound(err) {
					t.Fatalf("GetExport() = %v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("GetExport() mismatch (-want +got):\n%s", diff)
			}
		})
	}

	// An expired export takes no room: a full set of new ones all fit,
	// and storing an export again restarts its lifetime.
	var fresh []string
	for i := range s.Limits.Exports {
		id := fmt.Sprint("y", i)
		fresh = append(fresh, id)
		if err := s.Exports.PutExport(ctx, export("alice", id, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	var missing []string
	for _, id := range fresh {
		if _, err := s.Exports.GetExport(ctx, "alice", id); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v", id, err))
		}
	}
	if len(missing) > 0 {
		t.Errorf("exports missing although the expired one should take no room:\n%s", strings.Join(missing, "\n"))
	}
	if _, err := s.Exports.GetExport(ctx, "alice", "x1"); !isNotFound(err) {
		t.Errorf("expired export after more were stored = %v, want ErrNotFound", err)
	}
}
