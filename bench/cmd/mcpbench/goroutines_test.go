package main

import (
	"bytes"
	"runtime/pprof"
	"strings"
	"testing"
)

// parked blocks until release is closed: the stack the test looks for.
func parked(release <-chan struct{}) { <-release }

func goroutineProfile(t *testing.T) goroutineDump {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	return parseGoroutines(buf.String())
}

// TestGoroutineGrowth: goroutines started between two real profiles are
// found, counted and named by their stack; nothing else is reported grown
// by as many.
func TestGoroutineGrowth(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	before := goroutineProfile(t)
	const n = 7
	started := make(chan struct{})
	for range n {
		go func() { started <- struct{}{}; parked(release) }()
		<-started
	}
	grown := goroutineGrowth(before, goroutineProfile(t), 3)
	if len(grown) == 0 || !strings.HasPrefix(grown[0], "+7 ") || !strings.Contains(grown[0], "mcpbench.parked") {
		t.Fatalf("growth %q, want first +7 in mcpbench.parked", grown)
	}
	if got := goroutineGrowth(before, before, 3); len(got) != 0 {
		t.Errorf("a profile against itself grew: %q", got)
	}
}

// TestGoroutineCountServerOnly: idle keep-alive connections of net/http
// are told apart from the server's other goroutines.
func TestGoroutineCountServerOnly(t *testing.T) {
	d := parseGoroutines(`goroutine profile: total 5
3 @ 0x1 0x2
#	0x1	internal/poll.runtime_pollWait+0x1	x.go:1
#	0x2	net/http.(*connReader).Read+0x1	x.go:2
#	0x3	net/http.(*conn).serve+0x1	x.go:3

2 @ 0x1 0x2
#	0x1	runtime.gopark+0x1	x.go:1
#	0x2	github.com/x/y.worker+0x1	y.go:2
`)
	if all, server := d.count(false), d.count(true); all != 5 || server != 2 {
		t.Errorf("count = %d all, %d server only; want 5 and 2", all, server)
	}
}
