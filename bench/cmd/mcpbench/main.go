// Command mcpbench is `make bench`: it measures remotemcp side by side with
// the server most users would pick instead (the go-sdk's stateless
// handler) and with a bare net/http JSON-RPC handler, in one run on one
// machine, and writes bench/results/<date>/report.md and report.json.
//
// Every server runs as its own process (remotemcp is the real binary built
// from ./cmd/remotemcp); the load generator is this program: a closed loop
// of a fixed number of keep-alive connections, a warm-up, then rounds whose
// medians are reported. With -pin (the default on two or more CPUs) the
// servers run on CPU 1 and the load generator and Redis on CPU 0, so that
// a server's throughput is what one core gives it.
//
// It also counts Redis round trips per tools/call (at a proxy in front of
// Redis), measures memory per idle legacy session and per open SSE stream
// (in a build of the same run() with a debug listener, -tags bench),
// the OAuth endpoints, a soak at half the measured throughput, a sustained
// legacy run at the full measured throughput (memory that grows per call),
// and CPU profiles of the peer and of remotemcp.
//
// Each phase can be skipped, so that one runs alone; the memory phase, with
// heap profiles of the streams, for example:
//
//	go run ./bench/cmd/mcpbench -configs '' -redis-calls 0 -flows 0 -profile 0 -soak 0 -mem 1000,10000 -mem-heap -out /tmp/mem
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/remotemcp/remotemcp/authz/token"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "peer" {
		if err := peerCommand(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "mcpbench peer:", err)
			os.Exit(1)
		}
		return
	}
	if err := runBench(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mcpbench:", err)
		os.Exit(1)
	}
}

// options are the flags of a run.
type options struct {
	out           string
	configs       []string
	conns         int
	warmup, round time.Duration
	rounds        int
	mem           []int
	memHeap       bool
	soak          time.Duration
	soakConfigs   []string
	soakShare     float64
	sustain       time.Duration
	sustainCfgs   []string
	profile       time.Duration
	profileCfgs   []string
	pin           bool
	redisCalls    int
	flows         int
	env           []string
}

func runBench(args []string) error {
	fs := flag.NewFlagSet("mcpbench", flag.ContinueOnError)
	var o options
	var configs, mem, soakConfigs string
	fs.StringVar(&o.out, "out", filepath.Join("bench", "results", time.Now().UTC().Format("2006-01-02")), "directory the report is written to")
	fs.StringVar(&configs, "configs", "a,b,b-gc,c,c-log,c-gogc,c-memlimit,c-redis,d,d-mem,e", "configurations of the throughput table")
	fs.IntVar(&o.conns, "conns", 32, "concurrent connections of the load generator")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured load before the rounds")
	fs.DurationVar(&o.round, "round", 5*time.Second, "length of one measured round")
	fs.IntVar(&o.rounds, "rounds", 5, "measured rounds per configuration (the median is reported)")
	fs.StringVar(&mem, "mem", "1000,10000", "numbers of idle legacy sessions and open SSE streams to measure memory at (empty: skip)")
	fs.BoolVar(&o.memHeap, "mem-heap", false, "also save a heap profile of the server with its n streams open, as heap-<config>-<n>.pb.gz in -out (go tool pprof -sample_index=inuse_space)")
	fs.DurationVar(&o.soak, "soak", 5*time.Minute, "soak duration per soak configuration (0 skips)")
	fs.StringVar(&soakConfigs, "soak-configs", "c,d", "configurations soaked")
	fs.Float64Var(&o.soakShare, "soak-share", 0.5, "soak rate as a share of the configuration's measured throughput")
	fs.DurationVar(&o.sustain, "sustain", 2*time.Minute, "sustained legacy run per configuration at its measured throughput, reporting server RSS and Redis used_memory at its start and end (0 skips)")
	sustainConfigs := fs.String("sustain-configs", "d-mem,d", "configurations of the sustained run (flat out if their throughput was not measured)")
	fs.DurationVar(&o.profile, "profile", 10*time.Second, "CPU profile length (0 skips)")
	profileConfigs := fs.String("profile-configs", "b,c,d", "configurations profiled")
	fs.BoolVar(&o.pin, "pin", machineCPUs() >= 2, "pin servers to CPU 1 and the load generator and Redis to CPU 0 (taskset)")
	fs.IntVar(&o.redisCalls, "redis-calls", 2000, "tools/calls over which Redis round trips are counted (0 skips)")
	fs.IntVar(&o.flows, "flows", 50, "whole OAuth flows timed (0 skips the OAuth figures)")
	serverEnv := fs.String("server-env", "", "comma-separated NAME=value added to the environment of every server (peers and remotemcp), e.g. GOGC=400 for an experiment")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.configs = splitList(configs)
	o.soakConfigs = splitList(soakConfigs)
	o.env = splitList(*serverEnv)
	o.profileCfgs = splitList(*profileConfigs)
	o.sustainCfgs = splitList(*sustainConfigs)
	for _, s := range splitList(mem) {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
			return fmt.Errorf("-mem %q: want positive numbers", mem)
		}
		o.mem = append(o.mem, n)
	}
	if o.pin {
		if _, err := exec.LookPath("taskset"); err != nil {
			return fmt.Errorf("-pin needs taskset (util-linux): %v; or run with -pin=false", err)
		}
		// Pin ourselves by running again under taskset: Go reads the CPU
		// set at start to choose GOMAXPROCS.
		if os.Getenv("MCPBENCH_PINNED") == "" {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			cmd := exec.Command("taskset", append([]string{"-c", "0", self}, os.Args[1:]...)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			cmd.Env = append(os.Environ(), "MCPBENCH_PINNED=1")
			signal.Ignore(os.Interrupt, syscall.SIGTERM) // the child gets them and cleans up
			return cmd.Run()
		}
		cpuSet, loadCPUSet = "1", "0"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return bench(ctx, &o)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// build compiles the real binary and the instrumented one.
func build(e *env) error {
	e.remotemcp = filepath.Join(e.work, "remotemcp")
	e.instrument = filepath.Join(e.work, "remotemcp-bench.test")
	for _, c := range [][]string{
		{"go", "build", "-o", e.remotemcp, "./cmd/remotemcp"},
		{"go", "test", "-c", "-tags", "bench", "-o", e.instrument, "./cmd/remotemcp"},
	} {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(c, " "), err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	e.self = self
	return nil
}

func bench(ctx context.Context, o *options) error {
	start := time.Now()
	work, err := os.MkdirTemp("", "mcpbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	e := &env{work: work, conns: o.conns, extraEnv: o.env}
	logf("building remotemcp")
	if err := build(e); err != nil {
		return err
	}
	k, err := token.GenerateKey()
	if err != nil {
		return err
	}
	if e.jwtRing, err = token.NewKeyRing(k); err != nil {
		return err
	}
	stopHarness, err := startHarness(e)
	if err != nil {
		return err
	}
	defer stopHarness()
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	rep := &report{Started: start.UTC(), Machine: machineFacts(), Options: optionsOf(o)}

	logf("throughput: %s, rounds interleaved", strings.Join(o.configs, ", "))
	if rep.Throughput, err = throughput(ctx, e, o, o.configs); err != nil {
		return err
	}
	for _, r := range rep.Throughput {
		logf("  %s: %.0f calls/s, p50 %.0fµs, p99 %.0fµs, server CPU %.1fµs/call", r.Key, r.Load.RPS, r.Load.P50us, r.Load.P99us, r.Load.CPUPerOp)
	}
	rep.ratios()

	for _, key := range []string{"c-redis", "d"} {
		if o.redisCalls <= 0 {
			break
		}
		logf("Redis round trips: %s", key)
		r, err := redisTrips(ctx, e, o, key)
		if err != nil {
			return fmt.Errorf("redis round trips %s: %w", key, err)
		}
		rep.Redis = append(rep.Redis, r)
		logf("  %.3f round trips per tools/call", r.TripsPerCall)
	}

	for _, n := range o.mem {
		for _, key := range []string{"d-mem", "d"} {
			logf("memory: %d sessions and SSE streams, %s", n, key)
			var heap string
			if o.memHeap {
				heap = filepath.Join(o.out, fmt.Sprintf("heap-%s-%d.pb.gz", key, n))
			}
			r, err := memory(ctx, e, key, n, heap)
			if err != nil {
				return fmt.Errorf("memory %s %d: %w", key, n, err)
			}
			rep.Memory = append(rep.Memory, r)
			logf("  per session: heap %.0f B, RSS %.0f B, Redis %.0f B; per stream: heap %.0f B, stacks %.0f B, RSS %.0f B",
				r.Session.Heap, r.Session.RSS, r.Session.Redis, r.Stream.Heap, r.Stream.Stacks, r.Stream.RSS)
		}
	}

	if o.flows > 0 {
		logf("OAuth: %d whole flows, then refresh grants", o.flows)
		if rep.OAuth, err = oauthBench(ctx, e, o); err != nil {
			return fmt.Errorf("oauth: %w", err)
		}
	}

	if o.profile > 0 {
		for _, key := range o.profileCfgs {
			logf("CPU profile: %s", key)
			p, err := profile(ctx, e, o, key)
			if err != nil {
				return fmt.Errorf("profile %s: %w", key, err)
			}
			rep.Profiles = append(rep.Profiles, p)
		}
	}

	if o.soak > 0 {
		for _, key := range o.soakConfigs {
			rps := rep.rpsOf(key)
			if rps == 0 {
				return fmt.Errorf("soak %s: its throughput was not measured (add it to -configs)", key)
			}
			logf("soak %s: %v at %.0f calls/s", key, o.soak, rps*o.soakShare)
			r, err := soak(ctx, e, o, key, rps*o.soakShare)
			if err != nil {
				return fmt.Errorf("soak %s: %w", key, err)
			}
			rep.Soak = append(rep.Soak, r)
			logf("  heap %+.0f B, goroutines %+.1f, errors %d", r.HeapGrowth, r.GoroutineGrowth, r.Load.Errors)
		}
	}
	if o.sustain > 0 {
		for _, key := range o.sustainCfgs {
			rps := rep.rpsOf(key)
			logf("sustained %s: %v at %.0f calls/s (0: flat out)", key, o.sustain, rps)
			r, err := sustain(ctx, e, o, key, rps, o.sustain)
			if err != nil {
				return fmt.Errorf("sustained %s: %w", key, err)
			}
			rep.Sustain = append(rep.Sustain, r)
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if err := rep.write(o.out); err != nil {
		return err
	}
	fmt.Println(rep.table())
	logf("report written to %s in %s", o.out, time.Since(start).Round(time.Second))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s mcpbench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
