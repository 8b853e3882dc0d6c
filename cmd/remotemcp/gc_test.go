package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// TestGCFloor: with a small live heap, gcFloor raises GOGC so that the
// heap may grow by about the headroom before a collection, never so far
// that the runtime's 4 MiB minimum heap goal would exceed the headroom;
// with no headroom to give, it leaves the default 100.
func TestGCFloor(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tt := range []struct {
		name     string
		headroom uint64
		min, max int64
	}{
		{"small heap", 64 << 20, 101, 1600},
		{"cap", 1 << 40, 1<<40*100/(4<<20) - 1, 1<<40*100/(4<<20) + 1},
		{"no headroom", 0, 100, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { gcFloor(ctx, tt.headroom); close(done) }()
			defer func() { cancel(); <-done }()
			s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
			deadline := time.Now().Add(5 * time.Second)
			for {
				metrics.Read(s)
				got := int64(s[0].Value.Uint64())
				if got >= tt.min && got <= tt.max && (tt.min != 100 || time.Now().After(deadline.Add(-4*time.Second))) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("GOGC = %d, want %d to %d", got, tt.min, tt.max)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
