package devidp

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestMemStoreBound: the in-memory store holds at most maxEntries
// records; one more is refused with errFull (temporarily_unavailable on
// the wire) until records expire, and a sweep then makes room.
func TestMemStoreBound(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := newMemStore(func() time.Time { return now })
	ctx := context.Background()
	for i := range maxEntries {
		if err := s.Put(ctx, fmt.Sprint(i), []byte{1}, time.Minute); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := s.Put(ctx, "one more", []byte{1}, time.Minute); !errors.Is(err, errFull) {
		t.Errorf("put past the bound: %v, want errFull", err)
	}
	if _, err := s.Claim(ctx, "one more", time.Minute); !errors.Is(err, errFull) {
		t.Errorf("claim past the bound: %v, want errFull", err)
	}
	if err := s.Put(ctx, "0", []byte{2}, time.Minute); err != nil {
		t.Errorf("replacing a record at the bound: %v", err)
	}
	now = now.Add(time.Minute)
	if _, err := s.Get(ctx, "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after the TTL: %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, "one more", []byte{1}, time.Minute); err != nil {
		t.Errorf("put once the others expired: %v", err)
	}
	if n := len(s.m); n != 1 {
		t.Errorf("%d records after the sweep, want 1", n)
	}
}

// TestMemStoreTakeAndClaim: Take returns a record once; Claim stores a
// mark once until its TTL passes.
func TestMemStoreTakeAndClaim(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := newMemStore(func() time.Time { return now })
	ctx := context.Background()
	s.Put(ctx, "k", []byte("v"), time.Minute)
	if v, err := s.Take(ctx, "k"); err != nil || string(v) != "v" {
		t.Errorf("take: %q %v", v, err)
	}
	if _, err := s.Take(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second take: %v, want ErrNotFound", err)
	}
	for i, want := range []bool{true, false} {
		if got, err := s.Claim(ctx, "m", time.Minute); got != want || err != nil {
			t.Errorf("claim %d: %v %v, want %v", i, got, err, want)
		}
	}
	now = now.Add(time.Minute)
	if got, _ := s.Claim(ctx, "m", time.Minute); !got {
		t.Error("claim after the mark's TTL: false, want true")
	}
}
