package redisstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/internal/redistest"
	"github.com/remotemcp/remotemcp/tools/notes"
	"github.com/remotemcp/remotemcp/tools/notes/redisstore"
	"github.com/remotemcp/remotemcp/tools/notes/storetest"
)

// exportTTL is the contract suite's: AdvanceClock, not real time, takes
// the exports past it.
const exportTTL = time.Minute

// newClient returns a client with bounded waits, and few retries so that
// the fault tests fail fast.
func newClient(t *testing.T, srv *redistest.Server) *redis.Client {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		MaxRetries:            1,
		DialerRetries:         1,
	})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newPrefix returns a key prefix of its own for one test.
func newPrefix() string { return "test:" + rand.Text() + ":" }

func TestContract(t *testing.T) {
	rdb := newClient(t, redistest.Start(t))
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		limits := notes.Limits{Notes: 200, Bytes: 64 << 10}
		s := redisstore.New(rdb, &redisstore.Options{Prefix: newPrefix(), ExportTTL: exportTTL, Limits: limits})
		advance := func(d time.Duration) {
			if err := s.AdvanceClock(t.Context(), d); err != nil {
				t.Errorf("AdvanceClock(%v): %v", d, err)
			}
		}
		return storetest.Stores{Notes: s, Exports: s, Advance: advance, ExportTTL: exportTTL, Limits: limits}
	})
}

// workload gives owner notes and exports, replaces and deletes some.
func workload(t *testing.T, s *redisstore.Store, owner string) {
	t.Helper()
	ctx := t.Context()
	for i := range 5 {
		id := fmt.Sprint("n", i)
		for range 2 { // create, then replace
			if err := s.Put(ctx, &notes.Note{ID: id, Owner: owner, Title: id, Tags: []string{"t"}, UpdatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutExport(ctx, &notes.Export{ID: fmt.Sprint("x", i), Owner: owner, Content: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"n0", "n1"} {
		if err := s.Delete(ctx, owner, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.List(ctx, owner); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetExport(ctx, owner, "x0"); err != nil {
		t.Fatal(err)
	}
}

// scan returns every key that starts with prefix.
func scan(t *testing.T, rdb redis.UniversalClient, prefix string) []string {
	t.Helper()
	var keys []string
	iter := rdb.Scan(t.Context(), 0, prefix+"*", 100).Iterator()
	for iter.Next(t.Context()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// owners are owner IDs that could confuse key construction.
var owners = []string{"alice", "", "{alice}", "a}b{c", "x:{n:y}:notes", "\xff\x00", strings.Repeat("o", 100000)}

// TestKeys checks the key families of the package documentation: every key
// has a TTL of its family, its length does not depend on the owner ID, and
// one owner's keys share a Cluster slot.
func TestKeys(t *testing.T) {
	rdb := newClient(t, redistest.Start(t))
	const noteTTL = 30 * 24 * time.Hour
	for i, owner := range owners {
		t.Run(fmt.Sprint("owner", i), func(t *testing.T) {
			prefix := newPrefix()
			s := redisstore.New(rdb, &redisstore.Options{Prefix: prefix, NoteTTL: noteTTL, ExportTTL: time.Minute})
			workload(t, s, owner)

			keys := scan(t, rdb, prefix)
			families := map[string]bool{}
			slots := map[uint16]bool{}
			for _, k := range keys {
				family := k[strings.LastIndexByte(k, ':')+1:]
				families[family] = true
				slots[slot(k)] = true
				if limit := len(prefix) + len("{n:}:expiries") + 64; len(k) > limit {
					t.Errorf("key %.100q is longer than %d bytes", k, limit)
				}
				ttl, err := rdb.PTTL(t.Context(), k).Result()
				if err != nil {
					t.Fatal(err)
				}
				lo, hi := noteTTL-time.Minute, noteTTL
				if family == "exports" || family == "expiries" {
					// An export stored in the same millisecond as the
					// one before expires a millisecond after it.
					lo, hi = 30*time.Second, time.Minute+time.Second
				}
				if ttl < lo || ttl > hi {
					t.Errorf("PTTL %s = %v, want in [%v, %v]", k, ttl, lo, hi)
				}
			}
			want := map[string]bool{"notes": true, "updated": true, "sizes": true, "exports": true, "expiries": true}
			if diff := cmp.Diff(want, families); diff != "" {
				t.Errorf("key families (-want +got):\n%s", diff)
			}
			if len(slots) != 1 {
				t.Errorf("the owner's %d keys are in %d Cluster slots, want 1: %q", len(keys), len(slots), keys)
			}
		})
	}

	// Deleting an owner's last note leaves no empty keys behind.
	prefix := newPrefix()
	s := redisstore.New(rdb, &redisstore.Options{Prefix: prefix})
	if err := s.Put(t.Context(), &notes.Note{ID: "n", Owner: "bob", Title: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), "bob", "n"); err != nil {
		t.Fatal(err)
	}
	if keys := scan(t, rdb, prefix); len(keys) != 0 {
		t.Errorf("keys left after deleting the only note: %q", keys)
	}
}

// TestDefaults checks the documented TTLs of Options' zero values.
func TestDefaults(t *testing.T) {
	rdb := newClient(t, redistest.Start(t))
	s := redisstore.New(rdb, nil)
	ctx := t.Context()
	owner := "defaults-" + rand.Text()
	workload(t, s, owner)
	for _, k := range scan(t, rdb, redisstore.DefaultPrefix) {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := redisstore.DefaultNoteTTL
		if strings.HasSuffix(k, ":exports") || strings.HasSuffix(k, ":expiries") {
			want = redisstore.DefaultExportTTL
		}
		if ttl < want-time.Minute || ttl > want+time.Second {
			t.Errorf("PTTL %s = %v, want about %v", k, ttl, want)
		}
	}
}

func TestNewPanics(t *testing.T) {
	unused := redis.NewClient(&redis.Options{})
	t.Cleanup(func() { unused.Close() })
	for _, tt := range []struct {
		name string
		rdb  redis.UniversalClient
		opts *redisstore.Options
	}{
		{"nil client", nil, nil},
		{"brace in prefix", unused, &redisstore.Options{Prefix: "a{b}:"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "redisstore: ") {
					t.Errorf("New() panicked with %v, want a redisstore: panic", r)
				}
			}()
			redisstore.New(tt.rdb, tt.opts)
		})
	}
}

// ops are every store operation, for the fault tests.
var ops = []struct {
	name string
	do   func(ctx context.Context, s *redisstore.Store) error
}{
	{"Put", func(ctx context.Context, s *redisstore.Store) error {
		return s.Put(ctx, &notes.Note{ID: "new", Owner: "alice", Title: "t"})
	}},
	{"Get", func(ctx context.Context, s *redisstore.Store) error { _, err := s.Get(ctx, "alice", "n"); return err }},
	{"List", func(ctx context.Context, s *redisstore.Store) error { _, err := s.List(ctx, "alice"); return err }},
	{"Delete", func(ctx context.Context, s *redisstore.Store) error { return s.Delete(ctx, "alice", "n") }},
	{"PutExport", func(ctx context.Context, s *redisstore.Store) error {
		return s.PutExport(ctx, &notes.Export{ID: "new", Owner: "alice"})
	}},
	{"GetExport", func(ctx context.Context, s *redisstore.Store) error {
		_, err := s.GetExport(ctx, "alice", "x")
		return err
	}},
}

// wantFault checks that every operation fails within limit with an error
// that is neither ErrNotFound nor ErrLimit: a caller must not tell a user
// that their note is gone because Redis is. It is ErrUnavailable, which
// the MCP layer answers 503.
func wantFault(t *testing.T, s *redisstore.Store, timeout, limit time.Duration) {
	t.Helper()
	for _, op := range ops {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		start := time.Now()
		err := op.do(ctx, s)
		elapsed := time.Since(start)
		cancel()
		if err == nil || errors.Is(err, notes.ErrNotFound) || errors.Is(err, notes.ErrLimit) {
			t.Errorf("%s = %v, want a backend error", op.name, err)
		}
		if !errors.Is(err, notes.ErrUnavailable) {
			t.Errorf("%s = %v, want it to wrap ErrUnavailable", op.name, err)
		}
		if elapsed > limit {
			t.Errorf("%s took %v to fail, want at most %v", op.name, elapsed, limit)
		}
	}
}

// seed stores the note and export that ops read.
func seed(t *testing.T, s *redisstore.Store) {
	t.Helper()
	if err := s.Put(t.Context(), &notes.Note{ID: "n", Owner: "alice", Title: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutExport(t.Context(), &notes.Export{ID: "x", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
}

func TestFaults(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	s := redisstore.New(rdb, &redisstore.Options{Prefix: newPrefix()})
	seed(t, s)

	t.Run("killed", func(t *testing.T) {
		srv.Kill()
		wantFault(t, s, 10*time.Second, 2*time.Second)
	})

	// A Redis restarted empty has lost the notes and the scripts: the
	// store reloads the scripts and reports the notes as not found.
	t.Run("restarted empty", func(t *testing.T) {
		srv.Restart()
		if _, err := s.Get(t.Context(), "alice", "n"); !errors.Is(err, notes.ErrNotFound) {
			t.Errorf("Get after an empty restart = %v, want ErrNotFound", err)
		}
		if _, err := s.GetExport(t.Context(), "alice", "x"); !errors.Is(err, notes.ErrNotFound) {
			t.Errorf("GetExport after an empty restart = %v, want ErrNotFound", err)
		}
		seed(t, s)
		for _, op := range ops {
			if err := op.do(t.Context(), s); err != nil {
				t.Errorf("%s after the restart = %v", op.name, err)
			}
		}
	})

	// A paused Redis (a partition) fails requests when their context ends.
	t.Run("paused", func(t *testing.T) {
		seed(t, s)
		srv.Pause()
		wantFault(t, s, 200*time.Millisecond, time.Second)
		srv.Resume()
		seed(t, s)
		if _, err := s.Get(t.Context(), "alice", "n"); err != nil {
			t.Errorf("Get after resuming = %v", err)
		}
	})
}

// slot is the Redis Cluster slot of key: CRC16 of its hash tag (the bytes
// between the first '{' and the next '}', if not empty) or of all of it.
func slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) % 16384
}

// crc16 is CRC-16/XMODEM, as the Redis Cluster specification defines it.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func TestSlot(t *testing.T) {
	// The Redis Cluster specification's test vector, and its examples.
	if got := crc16("123456789"); got != 0x31c3 {
		t.Errorf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	for _, tt := range []struct{ a, b string }{
		{"{user1000}.following", "{user1000}.followers"},
		{"foo{}{bar}", "foo{}{bar}"},
		{"foo{{bar}}zap", "{bar"},
		{"foo{bar}{zap}", "bar"},
	} {
		if slot(tt.a) != slot(tt.b) {
			t.Errorf("slot(%q) = %d, slot(%q) = %d; want equal", tt.a, slot(tt.a), tt.b, slot(tt.b))
		}
	}
}
