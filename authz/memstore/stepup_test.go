package memstore

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestStepUpsBounded: past MaxStepUps marks, a new mark replaces the one
// closest to expiry; a replaced key does not count twice.
func TestStepUpsBounded(t *testing.T) {
	ctx, clock := context.Background(), newClock()
	s := New(&Options{Now: clock.Now})
	for i := range MaxStepUps {
		if err := s.MarkStepUp(ctx, fmt.Sprint(i), []string{"a"}, time.Hour+time.Duration(i)*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkStepUp(ctx, "1", []string{"b"}, 2*time.Hour); err != nil { // a replacement
		t.Fatal(err)
	}
	if _, err := s.TakeStepUp(ctx, "0"); err != nil {
		t.Fatalf("a replacement evicted a mark: %v", err)
	}
	for _, k := range []string{"new-1", "new-2"} {
		if err := s.MarkStepUp(ctx, k, []string{"a"}, 3*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.stepups.len(); n != MaxStepUps {
		t.Errorf("%d marks, want the bound %d", n, MaxStepUps)
	}
	if _, err := s.TakeStepUp(ctx, "2"); err == nil {
		t.Error("the mark closest to expiry survived past the bound")
	}
	for _, k := range []string{"1", "new-1", "new-2", fmt.Sprint(MaxStepUps - 1)} {
		if _, err := s.TakeStepUp(ctx, k); err != nil {
			t.Errorf("mark %s: %v", k, err)
		}
	}
}
