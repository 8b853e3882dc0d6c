//go:build bench

package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestBenchServe is remotemcp for `make bench` (bench/cmd/mcpbench), which
// builds this file into a test binary with -tags bench: it runs the real
// run() with the arguments in REMOTEMCP_BENCH_ARGS (one per line), plus a
// debug listener on REMOTEMCP_BENCH_DEBUG that the benchmark reads the
// server's heap and goroutines from, and takes CPU profiles from. Without
// those variables it is skipped.
//
//	GET /debug/stats        two GCs, then {"heap_alloc","heap_inuse","stacks","goroutines","rss"} in bytes
//	GET /debug/pprof/...    net/http/pprof
func TestBenchServe(t *testing.T) {
	args, debug := os.Getenv("REMOTEMCP_BENCH_ARGS"), os.Getenv("REMOTEMCP_BENCH_DEBUG")
	if args == "" || debug == "" {
		t.Skip("REMOTEMCP_BENCH_ARGS and REMOTEMCP_BENCH_DEBUG are set by bench/cmd/mcpbench")
	}
	ln, err := net.Listen("tcp", debug)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(benchStats())
	})
	go http.Serve(ln, mux)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, strings.Split(strings.TrimSpace(args), "\n"), os.Getenv, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// benchStats collects garbage twice (finalizers of the first cycle free
// more in the second) and reports the live heap, goroutine stacks,
// goroutines and resident set size.
func benchStats() map[string]uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
	metrics.Read(s)
	out := map[string]uint64{
		"heap_alloc": s[0].Value.Uint64(),
		"heap_inuse": s[0].Value.Uint64() + s[1].Value.Uint64(),
		"stacks":     s[2].Value.Uint64(),
		"goroutines": s[3].Value.Uint64(),
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				out["rss"] = kb << 10
			}
		}
	}
	return out
}
