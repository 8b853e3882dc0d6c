package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/remotemcp/remotemcp/authz"
)

// testStepUps: step-up marks are kept under their key until taken or
// expired, taken once, and a new mark replaces the old.
func testStepUps(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("MarkTake", func(t *testing.T) { testStepUpsMarkTake(t, newStores) })
	t.Run("Replace", func(t *testing.T) { testStepUpsReplace(t, newStores) })
	t.Run("Expiry", func(t *testing.T) { testStepUpsExpiry(t, newStores) })
	t.Run("ConcurrentTake", func(t *testing.T) { testStepUpsConcurrentTake(t, newStores) })
}

func testStepUpsMarkTake(t *testing.T, newStores func(t *testing.T) Stores) {
	s, ctx := newStores(t).StepUps, ctxFor(t)
	key := newID()
	if _, err := s.TakeStepUp(ctx, key); !errors.Is(err, authz.ErrNotFound) {
		t.Fatalf("take of a missing mark: %v, want ErrNotFound", err)
	}
	want := []string{"notes:write", "notes:admin"}
	if err := s.MarkStepUp(ctx, key, want, long); err != nil {
		t.Fatal(err)
	}
	got, err := s.TakeStepUp(ctx, key)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("take = %v, %v; want %v", got, err, want)
	}
	if _, err := s.TakeStepUp(ctx, key); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("second take: %v, want ErrNotFound", err)
	}
}

func testStepUpsReplace(t *testing.T, newStores func(t *testing.T) Stores) {
	s, ctx := newStores(t).StepUps, ctxFor(t)
	key, other := newID(), newID()
	for _, m := range []struct {
		key    string
		scopes []string
	}{{key, []string{"a"}}, {other, []string{"c"}}, {key, []string{"b"}}} {
		if err := s.MarkStepUp(ctx, m.key, m.scopes, long); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.TakeStepUp(ctx, key); err != nil || !slices.Equal(got, []string{"b"}) {
		t.Errorf("take = %v, %v; want [b] (the later mark)", got, err)
	}
	if got, err := s.TakeStepUp(ctx, other); err != nil || !slices.Equal(got, []string{"c"}) {
		t.Errorf("take of the other key = %v, %v; want [c]", got, err)
	}
}

func testStepUpsExpiry(t *testing.T, newStores func(t *testing.T) Stores) {
	st := newStores(t)
	s, ctx := st.StepUps, ctxFor(t)
	kept, gone := newID(), newID()
	if err := s.MarkStepUp(ctx, gone, []string{"a"}, st.TTL); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkStepUp(ctx, kept, []string{"a"}, long); err != nil {
		t.Fatal(err)
	}
	st.Advance(st.TTL * 5 / 4)
	if _, err := s.TakeStepUp(ctx, gone); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("take after the TTL: %v, want ErrNotFound", err)
	}
	if _, err := s.TakeStepUp(ctx, kept); err != nil {
		t.Errorf("take of a mark within its TTL: %v", err)
	}
}

func testStepUpsConcurrentTake(t *testing.T, newStores func(t *testing.T) Stores) {
	s, ctx := newStores(t).StepUps, ctxFor(t)
	key := newID()
	if err := s.MarkStepUp(ctx, key, []string{"a"}, long); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range workers {
		wg.Go(func() {
			_, err := s.TakeStepUp(ctx, key)
			if err != nil && !errors.Is(err, authz.ErrNotFound) {
				t.Error(err)
			}
			mu.Lock()
			if err == nil {
				won++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d concurrent takes got the mark, want 1", won)
	}
}
