package ttlcache

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 7, 28, 0, 0, 0, 0, time.UTC)

// keys returns the keys of c, oldest first, and checks that the list and
// the map agree.
func keys[K comparable, V any](t *testing.T, c *Cache[K, V]) []K {
	t.Helper()
	var ks []K
	for e := c.ring.next; e != &c.ring; e = e.next {
		if c.m[e.key] != e {
			t.Fatalf("entry %v of the list is not the map's", e.key)
		}
		if e.next.prev != e {
			t.Fatalf("the list is broken after %v", e.key)
		}
		ks = append(ks, e.key)
	}
	if len(ks) != len(c.m) {
		t.Fatalf("the list has %d entries, the map %d", len(ks), len(c.m))
	}
	return ks
}

func TestCache(t *testing.T) {
	c := New[string, int](3)
	now := t0
	get := func(k string) any {
		if v, ok := c.Get(k, now); ok {
			return v
		}
		return "miss"
	}

	// Each entry expires at its own deadline: live while now is before it.
	c.Set("a", 1, t0.Add(time.Minute), now)
	c.Set("b", 2, t0.Add(time.Second), now)
	if diff := cmp.Diff([]any{1, 2, "miss"}, []any{get("a"), get("b"), get("c")}); diff != "" {
		t.Errorf("fresh (-want +got):\n%s", diff)
	}
	now = t0.Add(time.Second)
	if diff := cmp.Diff([]any{1, "miss"}, []any{get("a"), get("b")}); diff != "" {
		t.Errorf("at b's deadline (-want +got):\n%s", diff)
	}
	if n := c.Len(); n != 2 {
		t.Errorf("Get dropped an expired entry: Len = %d, want 2", n)
	}

	// Set drops what expired at the old end, not "b" behind a live "a".
	c.Set("c", 3, t0.Add(time.Hour), now)
	if diff := cmp.Diff([]string{"a", "b", "c"}, keys(t, c)); diff != "" {
		t.Errorf("expired b behind live a (-want +got):\n%s", diff)
	}
	// Full: the oldest goes first, and then what expired behind it.
	c.Set("d", 4, t0.Add(time.Hour), now)
	if diff := cmp.Diff([]string{"c", "d"}, keys(t, c)); diff != "" {
		t.Errorf("beyond the bound (-want +got):\n%s", diff)
	}
	// A replace makes newest.
	c.Set("a", 10, t0.Add(time.Hour), now)
	c.Set("c", 30, t0.Add(time.Hour), now)
	if diff := cmp.Diff([]string{"d", "a", "c"}, keys(t, c)); diff != "" {
		t.Errorf("after replaces (-want +got):\n%s", diff)
	}
	c.Set("e", 5, t0.Add(time.Hour), now)
	if diff := cmp.Diff([]string{"a", "c", "e"}, keys(t, c)); diff != "" {
		t.Errorf("beyond the bound (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"miss", 10, 30, 5}, []any{get("d"), get("a"), get("c"), get("e")}); diff != "" {
		t.Errorf("beyond the bound (-want +got):\n%s", diff)
	}
	// Replacing in a full cache drops nothing else.
	c.Set("a", 11, t0.Add(time.Hour), now)
	if diff := cmp.Diff([]string{"c", "e", "a"}, keys(t, c)); diff != "" {
		t.Errorf("replace in a full cache (-want +got):\n%s", diff)
	}

	// A deadline not after now removes.
	c.Set("c", 40, now, now)
	if diff := cmp.Diff([]string{"e", "a"}, keys(t, c)); diff != "" {
		t.Errorf("set already expired (-want +got):\n%s", diff)
	}

	// Add sets only over no live entry.
	if c.Add("a", 12, t0.Add(time.Hour), now) {
		t.Error("Add replaced a live entry")
	}
	c.Set("f", 6, now.Add(time.Second), now)
	if !c.Add("g", 7, t0.Add(time.Hour), now) {
		t.Error("Add of an absent key did nothing")
	}
	now = now.Add(time.Second)
	if !c.Add("f", 60, t0.Add(time.Hour), now) {
		t.Error("Add over an expired entry did nothing")
	}
	if diff := cmp.Diff([]any{11, 7, 60}, []any{get("a"), get("g"), get("f")}); diff != "" {
		t.Errorf("after Add (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "g", "f"}, keys(t, c)); diff != "" {
		t.Errorf("after Add (-want +got):\n%s", diff)
	}

	// Delete and Clear.
	c.Delete("g")
	c.Delete("nothing")
	if diff := cmp.Diff([]string{"a", "f"}, keys(t, c)); diff != "" {
		t.Errorf("after Delete (-want +got):\n%s", diff)
	}
	c.Clear()
	if n := len(keys(t, c)); n != 0 || c.Len() != 0 {
		t.Errorf("after Clear: %d entries", n)
	}
	c.Set("h", 8, t0.Add(time.Hour), now)
	if diff := cmp.Diff([]string{"h"}, keys(t, c)); diff != "" {
		t.Errorf("after Clear and Set (-want +got):\n%s", diff)
	}

	// Every expired entry at the old end goes at the next Set.
	for i := range 3 {
		c.Set(strconv.Itoa(i), i, now.Add(time.Minute), now)
	}
	now = now.Add(time.Minute)
	c.Set("i", 9, now.Add(time.Minute), now)
	if diff := cmp.Diff([]string{"i"}, keys(t, c)); diff != "" {
		t.Errorf("after all expired (-want +got):\n%s", diff)
	}
}

func TestNewRefusesNoBound(t *testing.T) {
	for _, max := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", max)
				}
			}()
			New[string, int](max)
		}()
	}
}

// TestCacheConcurrent runs readers and writers at once, for the race
// detector, and checks the bound after.
func TestCacheConcurrent(t *testing.T) {
	c := New[int, int](64)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			now := t0
			for i := range 2000 {
				k := (g*7 + i) % 100
				switch i % 5 {
				case 0:
					c.Set(k, i, now.Add(time.Duration(i%3)*time.Second), now)
				case 1:
					c.Add(k, i, now.Add(time.Minute), now)
				case 2:
					c.Delete(k)
				default:
					c.Get(k, now)
				}
				now = now.Add(time.Millisecond)
			}
		})
	}
	wg.Wait()
	if n := len(keys(t, c)); n > 64 {
		t.Errorf("%d entries, want at most 64", n)
	}
}

// BenchmarkGet is the cost of a hit, as a verifier pays it on every
// request.
func BenchmarkGet(b *testing.B) {
	c := New[[32]byte, *int](10000)
	ks := make([][32]byte, 1000)
	for i := range ks {
		ks[i][0], ks[i][1] = byte(i), byte(i>>8)
		c.Set(ks[i], new(int), t0.Add(time.Hour), t0)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := c.Get(ks[i%len(ks)], t0); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, ok := c.Get(ks[i%len(ks)], t0); !ok {
					b.Error("miss")
					return
				}
				i++
			}
		})
	})
}

// TestLive counts the entries not yet expired, where Len counts every one
// held.
func TestLive(t *testing.T) {
	c := New[string, int](10)
	t0 := time.Unix(1000, 0)
	c.Set("a", 1, t0.Add(time.Second), t0)
	c.Set("b", 2, t0.Add(time.Minute), t0)
	if got := c.Live(t0); got != 2 {
		t.Errorf("Live at t0 = %d; want 2", got)
	}
	if got, held := c.Live(t0.Add(2*time.Second)), c.Len(); got != 1 || held != 2 {
		t.Errorf("Live, Len after the first expired = %d, %d; want 1, 2", got, held)
	}
}
