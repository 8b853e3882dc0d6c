package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

type report struct {
	Started    time.Time           `json:"started"`
	Seconds    float64             `json:"seconds"`
	Machine    map[string]string   `json:"machine"`
	Options    map[string]string   `json:"options"`
	Throughput []*throughputResult `json:"throughput"`
	Ratios     map[string]float64  `json:"ratios"`
	Redis      []*redisResult      `json:"redis_round_trips"`
	Memory     []*memoryResult     `json:"memory"`
	OAuth      *oauthResult        `json:"oauth"`
	Profiles   []*profileResult    `json:"profiles"`
	Soak       []*soakResult       `json:"soak"`
	Sustain    []*sustainResult    `json:"sustained"`
}

func (r *report) load(key string) *loadResult {
	for _, t := range r.Throughput {
		if t.Key == key {
			return t.Load
		}
	}
	return nil
}

func (r *report) rpsOf(key string) float64 {
	if l := r.load(key); l != nil {
		return l.RPS
	}
	return 0
}

// ratios are throughput ratios (higher is better for the first named) and
// server-CPU-per-call ratios inverted the same way (cost of the second over
// the cost of the first), so that ≥ 1 means "at least as good" in both.
func (r *report) ratios() {
	r.Ratios = map[string]float64{}
	for _, p := range [][2]string{{"c", "b"}, {"c", "a"}, {"d", "b"}, {"e", "b"}, {"c-redis", "b"}, {"d-mem", "b"}, {"c", "b-gc"}, {"c", "c-gogc"}, {"c", "c-memlimit"}} {
		x, y := r.load(p[0]), r.load(p[1])
		if x == nil || y == nil || y.RPS == 0 || x.CPUPerOp == 0 {
			continue
		}
		r.Ratios[p[0]+"/"+p[1]] = x.RPS / y.RPS
		r.Ratios[p[0]+"/"+p[1]+" (CPU)"] = y.CPUPerOp / x.CPUPerOp
	}
}

func (r *report) table() string {
	var b strings.Builder
	b.WriteString("| | configuration | calls/s | p50 | p99 | server CPU per call | server peak RSS | other load |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range r.Throughput {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %.1f µs | %.0f MiB | %.0f%% |\n", t.Key, t.Desc, t.Load.RPS, us(t.Load.P50us), us(t.Load.P99us), t.Load.CPUPerOp, t.PeakRSS/(1<<20), 100*t.OtherLoad)
	}
	b.WriteString("\n| ratio | throughput | server CPU per call (inverted) |\n|---|---:|---:|\n")
	for _, k := range []string{"c/b", "c/a", "d/b", "e/b", "c-redis/b", "d-mem/b", "c/b-gc", "c/c-gogc", "c/c-memlimit"} {
		if v, ok := r.Ratios[k]; ok {
			fmt.Fprintf(&b, "| %s | %.2f | %.2f |\n", k, v, r.Ratios[k+" (CPU)"])
		}
	}
	return b.String()
}

// targets are the project's performance targets (bench/README.md) with
// what this run measured.
func (r *report) targets() []string {
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**not met**"
	}
	var out []string
	if v, ok := r.Ratios["c/b"]; ok {
		line := fmt.Sprintf("c/b ≥ 1.0: %s: %.2f by throughput, %.2f by server CPU per call", verdict(v >= 1), v, r.Ratios["c/b (CPU)"])
		if g, ok := r.Ratios["c/b-gc"]; ok {
			line += fmt.Sprintf(" (against the peer with its GC tuned like ours, c/b-gc: %.2f and %.2f)", g, r.Ratios["c/b-gc (CPU)"])
		}
		out = append(out, line)
	}
	for _, x := range r.Redis {
		switch x.Key {
		case "c-redis":
			out = append(out, fmt.Sprintf("0 Redis round trips per 2026-07-28 tools/call with our tokens: %s: %.3f", verdict(x.TripsPerCall < 0.01), x.TripsPerCall))
		case "d":
			out = append(out, fmt.Sprintf("≤ 1 Redis round trip per legacy-session tools/call: %s: %.3f", verdict(x.TripsPerCall <= 1), x.TripsPerCall))
		}
	}
	for _, m := range r.Memory {
		per := m.Stream.Heap + m.Stream.Stacks
		out = append(out, fmt.Sprintf("≤ 32 KiB per idle SSE stream (%s, n = %d; heap + goroutine stacks): %s: %s (RSS %s)",
			m.Key, m.N, verdict(per <= 32<<10), kib(per), kib(m.Stream.RSS)))
	}
	for _, s := range r.Soak {
		first := s.Samples[0]
		// Goroutines: those of the server itself, not the idle keep-alive
		// connections, whose number the load generator decides.
		ok := s.Load.Errors == 0 && s.ServerGoroutineGrowth <= 0 && s.HeapGrowth < max(1<<20, first.HeapAlloc/10)
		out = append(out, fmt.Sprintf("no goroutine or heap growth in the soak (%s, %.0f s at %.0f calls/s): %s: heap %+.1f KiB, goroutines %+.1f (means of the last 3 samples less the 3 after the first), %+d other than idle keep-alive connections (second sample to last), errors %d",
			s.Key, s.Seconds, s.Rate, verdict(ok), s.HeapGrowth/1024, s.GoroutineGrowth, s.ServerGoroutineGrowth, s.Load.Errors))
	}
	return out
}

func us(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}

func kib(v float64) string { return fmt.Sprintf("%.1f KiB", v/1024) }

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# remotemcp benchmarks, %s\n\n", r.Started.Format("2006-01-02"))
	fmt.Fprintf(&b, "`make bench` (bench/cmd/mcpbench), one run of %.0f s on one machine. Raw figures: report.json.\n\n", r.Seconds)
	b.WriteString("## Machine\n\n")
	for _, k := range []string{"cpu", "cpus", "memory", "kernel", "go", "redis", "commit", "pinning"} {
		fmt.Fprintf(&b, "- %s: %s\n", k, r.Machine[k])
	}
	b.WriteString("\n## tools/call throughput and latency\n\n")
	fmt.Fprintf(&b, "Closed loop, %s keep-alive connections, %s warm-up, then %s rounds of %s; medians of the rounds. "+
		"All configurations run at once (idle but one) and take their rounds in turn, so that the machine's other load falls on all alike. "+
		"Every configuration calls the tool `%s` (remotemcp's conformance fixture: no arguments, one fixed text content), "+
		"which the peers register with the same answer. Server CPU per call is the server process's CPU time over the calls it answered: "+
		"on a noisy machine it is steadier than calls/s. Other load is the share of the machine's CPU that other processes took meanwhile.\n\n",
		r.Options["conns"], r.Options["warmup"], r.Options["rounds"], r.Options["round"], toolName)
	b.WriteString(r.table())
	b.WriteString("\n## Targets\n\n")
	for _, t := range r.targets() {
		fmt.Fprintf(&b, "- %s\n", t)
	}
	b.WriteString("\nCommands:\n\n")
	for _, t := range r.Throughput {
		fmt.Fprintf(&b, "- %s: `%s`\n", t.Key, t.Command)
	}
	if len(r.Redis) > 0 {
		b.WriteString("\n## Redis round trips per tools/call\n\nCounted at a proxy between remotemcp and redis-server (a pipeline or a script is one round trip), over the calls below, less the idle rate (the health PING) over the same time. Commands are Redis' INFO commandstats deltas (commands inside scripts count too).\n\n")
		b.WriteString("| mode | calls | round trips per call | commands per call |\n|---|---:|---:|---|\n")
		for _, x := range r.Redis {
			var cmds []string
			for k, v := range x.Commands {
				if v >= 0.001 {
					cmds = append(cmds, fmt.Sprintf("%s %.3f", k, v))
				}
			}
			fmt.Fprintf(&b, "| %s: %s | %d | %.3f | %s |\n", x.Key, x.Desc, x.Calls, x.TripsPerCall, strings.Join(sortStrings(cmds), ", "))
		}
	}
	if len(r.Memory) > 0 {
		b.WriteString("\n## Memory\n\nIn the instrumented build (the same run() with a debug listener): n legacy sessions opened (initialize + initialized) and left idle, then a GET SSE stream opened on each; the server's live heap (after two GCs), goroutine stacks and RSS, and Redis' used_memory, before and after each step, divided by n. " +
			"RSS also holds heap the collector freed but has not returned to the system (up to remotemcp's GC headroom, 32 MiB): at n = 1 000 that is most of it, so read heap and stacks, and RSS at n = 10 000.\n\n")
		b.WriteString("| stores | n | heap / session | RSS / session | Redis / session | heap / stream | stacks / stream | RSS / stream | goroutines / stream |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, m := range r.Memory {
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %.1f |\n", m.Key, m.N, kib(m.Session.Heap), kib(m.Session.RSS), kib(m.Session.Redis),
				kib(m.Stream.Heap), kib(m.Stream.Stacks), kib(m.Stream.RSS), m.Stream.Goroutines)
		}
	}
	if o := r.OAuth; o != nil {
		b.WriteString("\n## OAuth\n\n")
		fmt.Fprintf(&b, "Whole flow (registration ⇒ authorize ⇒ consent ⇒ development provider login ⇒ callback ⇒ token), %d flows one after another: p50 %.1f ms, p99 %.1f ms, max %.1f ms.\n\n", o.Flows, o.FlowP50ms, o.FlowP99ms, o.FlowMaxMs)
		fmt.Fprintf(&b, "Refresh-token grant (/token, rotation), %d connections, one grant each: %.0f grants/s, p50 %s, p99 %s, server CPU %.1f µs per grant.\n\nCommand: `%s`\n",
			o.Refresh.Conns, o.Refresh.RPS, us(o.Refresh.P50us), us(o.Refresh.P99us), o.Refresh.CPUPerOp, o.Command)
	}
	if len(r.Soak) > 0 {
		b.WriteString("\n## Soak\n\nThe instrumented build at a fixed rate (a share of the configuration's measured throughput); heap (live, after two GCs), goroutines and RSS sampled 11 times, each a second after the load pauses.\n\n")
		b.WriteString("| configuration | duration | rate | p50 | p99 | errors | heap first → last | goroutines first → last | RSS first → last |\n|---|---:|---:|---:|---:|---:|---|---|---|\n")
		for _, s := range r.Soak {
			f, l := s.Samples[0], s.Samples[len(s.Samples)-1]
			fmt.Fprintf(&b, "| %s | %.0f s | %.0f/s | %s | %s | %d | %s → %s | %.0f → %.0f | %s → %s |\n", s.Key, s.Seconds, s.Rate,
				us(s.Load.P50us), us(s.Load.P99us), s.Load.Errors, kib(f.HeapAlloc), kib(l.HeapAlloc), f.Goroutines, l.Goroutines, kib(f.RSS), kib(l.RSS))
		}
		for _, s := range r.Soak {
			if len(s.GrownStacks) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\nGoroutine stacks that grew in soak %s, from the second sample to the last (profiles/goroutines-soak-%s-*.txt):\n\n```\n%s\n```\n", s.Key, s.Key, strings.Join(s.GrownStacks, "\n"))
		}
	}
	if len(r.Sustain) > 0 {
		b.WriteString("\n## Sustained legacy load\n\nThe real binary under legacy (2025-11-25) tools/calls at the configuration's measured throughput, one session per connection, after a 5 s warm-up; " +
			"the server's RSS (VmRSS) and Redis' used_memory and key count at the start and the end. What a call leaves behind is kept for the stream resume window, so both should be flat once a window has passed.\n\n")
		b.WriteString("| configuration | duration | rate | calls | p50 | p99 | RSS start → end | Redis used_memory start → end | Redis keys start → end |\n|---|---:|---:|---:|---:|---:|---|---|---|\n")
		for _, s := range r.Sustain {
			f, l := s.Samples[0], s.Samples[len(s.Samples)-1]
			fmt.Fprintf(&b, "| %s | %.0f s | %.0f/s | %d | %s | %s | %.1f → %.1f MiB | %.1f → %.1f MiB | %d → %d |\n", s.Key, s.Seconds, s.Rate, l.Calls,
				us(s.Load.P50us), us(s.Load.P99us), f.RSS/(1<<20), l.RSS/(1<<20), float64(f.RedisUsed)/(1<<20), float64(l.RedisUsed)/(1<<20), f.RedisKeys, l.RedisKeys)
		}
	}
	if len(r.Profiles) > 0 {
		b.WriteString("\n## CPU profiles\n\nUnder the throughput load; raw profiles in profiles/ (`go tool pprof -top FILE`).\n")
		for _, p := range r.Profiles {
			fmt.Fprintf(&b, "\n### %s\n\n```\n%s```\n", p.Key, p.Top)
		}
	}
	b.WriteString("\n## Options\n\n")
	for _, k := range sortedKeys(r.Options) {
		fmt.Fprintf(&b, "- %s: %s\n", k, r.Options[k])
	}
	return b.String()
}

func (r *report) write(dir string) error {
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.markdown()), 0o644)
}

func machineFacts() map[string]string {
	m := map[string]string{"cpus": fmt.Sprint(machineCPUs()), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		m["memory"] = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
	}
	m["kernel"] = output("uname", "-sr")
	m["redis"] = output("redis-server", "--version")
	m["commit"] = output("git", "rev-parse", "--short", "HEAD")
	if d := output("git", "status", "--porcelain", "--untracked-files=no"); d != "" {
		m["commit"] += " (with uncommitted changes)"
	}
	m["pinning"] = "none: servers and load generator share the CPUs"
	if cpuSet != "" {
		m["pinning"] = fmt.Sprintf("servers on CPU %s (GOMAXPROCS 1), load generator and Redis on CPU %s (taskset)", cpuSet, loadCPUSet)
	}
	m["go"] = output("go", "version")
	return m
}

func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func optionsOf(o *options) map[string]string {
	return map[string]string{
		"conns": fmt.Sprint(o.conns), "warmup": o.warmup.String(), "round": o.round.String(), "rounds": fmt.Sprint(o.rounds),
		"configs": strings.Join(o.configs, ","), "mem": fmt.Sprint(o.mem), "mem-heap": fmt.Sprint(o.memHeap), "soak": o.soak.String(),
		"soak-configs": strings.Join(o.soakConfigs, ","), "soak-share": fmt.Sprint(o.soakShare),
		"sustain": o.sustain.String(), "sustain-configs": strings.Join(o.sustainCfgs, ","),
		"server-env": strings.Join(o.env, ","), "profile": o.profile.String(), "profile-configs": strings.Join(o.profileCfgs, ","), "pin": fmt.Sprint(o.pin), "redis-calls": fmt.Sprint(o.redisCalls), "flows": fmt.Sprint(o.flows),
		"command": "go run ./bench/cmd/mcpbench " + strings.Join(os.Args[1:], " "),
	}
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return sortStrings(ks)
}

func sortStrings(s []string) []string {
	slices.Sort(s)
	return s
}
