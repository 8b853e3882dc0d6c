package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom is how much the heap may grow past the live heap before a
// collection, at least: the go-sdk's JSON decoder allocates a large
// buffer for every message it reads, so with the runtime's default (a
// collection whenever the heap doubles, from 4 MiB) a server whose live
// heap is a few MiB collects garbage hundreds of times a second, and
// spends more time in the collector than in requests. 32 MiB takes the
// server CPU of a tools/call from about 700 µs to about 370 (16 MiB: 395,
// 64 MiB: 365) for a peak RSS under load of about 60 MiB instead of 26
// (16 MiB: 41, 64 MiB: 98) (`make bench`, bench/results).
const gcHeadroom = 32 << 20

// gcFloor keeps the collector's heap goal near the live heap plus
// headroom, by raising GOGC while the live heap is small; from a live heap
// of headroom on, GOGC stays at the default 100. It re-reads the live
// heap every second until ctx is done. An operator's GOGC (the
// environment) is left alone: run does not start gcFloor then.
func gcFloor(ctx context.Context, headroom uint64) {
	// GOGC is a percentage of the live heap plus the stacks and globals
	// the collector scans (the runtime's "GC roots").
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	current := -1
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		percent := gcPercent(sample[0].Value.Uint64()+sample[1].Value.Uint64()+sample[2].Value.Uint64(), headroom)
		// Only a real change: SetGCPercent recomputes the pacer.
		if current < 0 || percent > current*11/10 || percent < current*9/10 {
			debug.SetGCPercent(percent)
			current = percent
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// gcPercent is the GOGC that lets a heap whose GC roots (live heap, stacks,
// globals) are base bytes grow by about headroom before a collection, and
// never less than the default 100.
func gcPercent(base, headroom uint64) int {
	base = max(base, 1<<20)
	// Capped so that the runtime's minimum heap goal (4 MiB at GOGC 100,
	// before the first collection) stays within the headroom.
	return int(max(100, min(headroom*100/base, headroom*100/(4<<20))))
}
