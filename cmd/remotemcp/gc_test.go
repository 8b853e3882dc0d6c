package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"testing/synctest"
)

// TestGCPercent: the heap may grow by about the headroom past its roots,
// never so far that the runtime's 4 MiB minimum heap goal would exceed the
// headroom, and never below the default 100.
func TestGCPercent(t *testing.T) {
	for _, tt := range []struct {
		name           string
		base, headroom uint64
		want           int
	}{
		{"small heap: the cap", 2 << 20, 32 << 20, 800},
		{"tiny heap: counted as 1 MiB, capped", 100 << 10, 32 << 20, 800},
		{"8 MiB heap", 8 << 20, 32 << 20, 400},
		{"heap as large as the headroom", 32 << 20, 32 << 20, 100},
		{"larger heap: the default", 1 << 30, 32 << 20, 100},
		{"no headroom", 2 << 20, 0, 100},
	} {
		if got := gcPercent(tt.base, tt.headroom); got != tt.want {
			t.Errorf("%s: gcPercent(%d, %d) = %d, want %d", tt.name, tt.base, tt.headroom, got, tt.want)
		}
	}
}

// TestGCFloor: the loop applies gcPercent of the process's own heap: with
// a headroom far above any test binary's heap, GOGC rises above the
// default, and it stays at 100 with none. The loop's ticker runs on
// synctest's clock: once every goroutine of the bubble is blocked, gcFloor
// has done its first pass and waits for its next tick.
func TestGCFloor(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tt := range []struct {
		name     string
		headroom uint64
		above100 bool
	}{
		{"headroom", 1 << 40, true},
		{"no headroom", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				debug.SetGCPercent(100)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() { gcFloor(ctx, tt.headroom); close(done) }()
				defer func() { cancel(); <-done }()
				synctest.Wait()
				s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
				metrics.Read(s)
				got := s[0].Value.Uint64()
				if tt.above100 && got <= 100 {
					t.Fatalf("GOGC = %d, want above 100", got)
				}
				if !tt.above100 && got != 100 {
					t.Fatalf("GOGC = %d with no headroom, want 100", got)
				}
			})
		})
	}
}
