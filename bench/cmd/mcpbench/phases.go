package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// throughputResult is one row of the throughput table.
type throughputResult struct {
	Key     string      `json:"key"`
	Desc    string      `json:"description"`
	Tool    string      `json:"tool"`
	Command string      `json:"command"`
	Load    *loadResult `json:"load"`
	// OtherLoad is the share of the machine's CPU time that processes
	// other than the server, Redis and the load generator used meanwhile:
	// how noisy the machine was.
	OtherLoad float64 `json:"other_load"`
	// PeakRSS is the server's peak resident set size (VmHWM), in bytes.
	PeakRSS float64 `json:"peak_rss"`
}

func (s *server) command() string {
	var words []string
	for _, kv := range s.env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "REMOTEMCP_") {
			v = "…" // a key or a client secret, made up for the run
		}
		words = append(words, k+"="+v)
	}
	if !strings.HasPrefix(s.key, "a") && !strings.HasPrefix(s.key, "b") {
		words = append(words, "remotemcp")
	}
	return strings.Join(append(words, s.args...), " ")
}

// throughput measures the configurations keys together: all are started
// first, then warmed up, then measured round by round, one configuration
// after the other in each round, so that what else the machine runs
// meanwhile weighs on every configuration alike.
func throughput(ctx context.Context, e *env, o *options, keys []string) ([]*throughputResult, error) {
	type running struct {
		s        *server
		hc       *http.Client
		steps    []step
		plan     loadPlan
		res      *throughputResult
		firstErr atomic.Value
		busy     time.Duration // machine CPU time during its rounds
		own      time.Duration // ours (server, Redis, load generator)
		elapsed  time.Duration
	}
	var all []*running
	defer func() {
		for _, r := range all {
			r.hc.CloseIdleConnections()
			r.s.stop()
		}
	}()
	for _, key := range keys {
		logf("starting %s: %s", key, configDesc[key])
		s, err := startConfig(ctx, e, key, false, nil)
		if err != nil {
			return nil, fmt.Errorf("configuration %s: %w", key, err)
		}
		r := &running{s: s, hc: &http.Client{Transport: newTransport(o.conns), Timeout: 30 * time.Second}}
		all = append(all, r)
		if r.steps, err = s.callers(ctx, r.hc, o.conns); err != nil {
			return nil, fmt.Errorf("configuration %s: %w", key, err)
		}
		r.plan = loadPlan{round: o.round, cpu: s.proc.cpuTime}
		r.res = &throughputResult{Key: key, Desc: configDesc[key], Tool: toolName, Command: s.command(), Load: &loadResult{Conns: o.conns}}
	}
	own := func(r *running) time.Duration {
		d := r.s.proc.cpuTime() + selfCPU()
		if r.s.rproc != nil {
			d += r.s.rproc.cpuTime()
		}
		return d
	}
	measure := func(r *running, d time.Duration) roundResult {
		busy0, own0, t0 := machineBusy(), own(r), time.Now()
		rr := r.plan.once(ctx, r.steps, d, &r.firstErr)
		r.busy += machineBusy() - busy0
		r.own += own(r) - own0
		r.elapsed += time.Since(t0)
		r.res.Load.Errors += rr.Errors
		return rr
	}
	for _, r := range all {
		measure(r, o.warmup)
	}
	for round := range o.rounds {
		for _, r := range all {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rr := measure(r, o.round)
			r.res.Load.Rounds = append(r.res.Load.Rounds, rr)
			logf("  round %d %s: %.0f calls/s, server CPU %.1f µs/call", round+1, r.res.Key, rr.RPS, rr.CPUPerOp)
		}
	}
	var out []*throughputResult
	for _, r := range all {
		if e, ok := r.firstErr.Load().(string); ok {
			r.res.Load.FirstErr = e
		}
		if r.res.Load.Errors > 0 {
			return nil, fmt.Errorf("configuration %s: %d errors, the first: %s", r.res.Key, r.res.Load.Errors, r.res.Load.FirstErr)
		}
		r.res.Load.summarize()
		r.res.OtherLoad = max(0, (r.busy-r.own).Seconds()/(r.elapsed.Seconds()*float64(machineCPUs())))
		r.res.PeakRSS = r.s.proc.peakRSS()
		out = append(out, r.res)
	}
	return out, nil
}

// redisResult is the Redis round trips of one mode.
type redisResult struct {
	Key          string             `json:"key"`
	Desc         string             `json:"description"`
	Calls        int                `json:"calls"`
	Trips        int64              `json:"round_trips"`
	IdleTrips    float64            `json:"idle_round_trips_subtracted"`
	TripsPerCall float64            `json:"round_trips_per_call"`
	Commands     map[string]float64 `json:"commands_per_call"`
}

// redisTrips counts the Redis round trips of calls tools/calls, at a
// proxy in front of Redis, less what the server does when idle (its
// health PING, once a second) over the same time.
func redisTrips(ctx context.Context, e *env, o *options, key string) (*redisResult, error) {
	var proxy *countingProxy
	s, err := startConfig(ctx, e, key, false, func(target string) string {
		var err error
		if proxy, err = newCountingProxy(target); err != nil {
			panic(err)
		}
		return proxy.addr()
	})
	if err != nil {
		return nil, err
	}
	defer s.stop()
	defer proxy.close()
	const workers = 8
	hc := &http.Client{Transport: newTransport(workers), Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	steps, err := s.callers(ctx, hc, workers)
	if err != nil {
		return nil, err
	}
	// Warm up: the first call of a grant looks it up; sessions are open.
	if err := runCalls(ctx, steps, 100); err != nil {
		return nil, err
	}
	t0, i0 := proxy.trips.Load(), time.Now()
	time.Sleep(3 * time.Second)
	idleRate := float64(proxy.trips.Load()-t0) / time.Since(i0).Seconds()
	cs0, err := commandStats(s.redis)
	if err != nil {
		return nil, err
	}
	t1, start := proxy.trips.Load(), time.Now()
	if err := runCalls(ctx, steps, o.redisCalls); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	trips := proxy.trips.Load() - t1
	cs1, err := commandStats(s.redis)
	if err != nil {
		return nil, err
	}
	r := &redisResult{Key: key, Desc: configDesc[key], Calls: o.redisCalls, Trips: trips, IdleTrips: idleRate * elapsed.Seconds(), Commands: map[string]float64{}}
	r.TripsPerCall = max(0, float64(trips)-r.IdleTrips) / float64(o.redisCalls)
	for cmd, n := range cs1 {
		if d := n - cs0[cmd]; d > 0 && cmd != "info" {
			r.Commands[cmd] = float64(d) / float64(o.redisCalls)
		}
	}
	return r, nil
}

// runCalls makes n calls spread over steps, each step sequentially.
func runCalls(ctx context.Context, steps []step, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(steps))
	for i, s := range steps {
		k := n / len(steps)
		if i < n%len(steps) {
			k++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range k {
				if err := s(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// stats is the instrumented server's /debug/stats.
type stats struct {
	HeapAlloc  float64 `json:"heap_alloc"`
	HeapInuse  float64 `json:"heap_inuse"`
	Stacks     float64 `json:"stacks"`
	Goroutines float64 `json:"goroutines"`
	RSS        float64 `json:"rss"`
}

func (s *server) stats() (*stats, error) {
	resp, err := http.Get("http://" + s.debug + "/debug/stats")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st stats
	return &st, json.NewDecoder(resp.Body).Decode(&st)
}

// saveHeapProfile writes the server's heap profile, taken after a GC, to
// file.
func (s *server) saveHeapProfile(file string) error {
	resp, err := http.Get("http://" + s.debug + "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("heap profile: status %d", resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// perItem is memory per session or per stream, in bytes.
type perItem struct {
	Heap       float64 `json:"heap"`
	Stacks     float64 `json:"stacks"`
	RSS        float64 `json:"rss"`
	Goroutines float64 `json:"goroutines"`
	Redis      float64 `json:"redis_used_memory,omitempty"`
}

type memoryResult struct {
	Key     string  `json:"key"`
	Desc    string  `json:"description"`
	N       int     `json:"n"`
	Session perItem `json:"idle_session"`
	Stream  perItem `json:"open_sse_stream"`
}

func delta(a, b *stats, ra, rb int64, n int) perItem {
	return perItem{
		Heap: (b.HeapAlloc - a.HeapAlloc) / float64(n), Stacks: (b.Stacks - a.Stacks) / float64(n),
		RSS: (b.RSS - a.RSS) / float64(n), Goroutines: (b.Goroutines - a.Goroutines) / float64(n),
		Redis: float64(rb-ra) / float64(n),
	}
}

// memory opens n legacy sessions, then a GET SSE stream on each, and
// measures the server (and Redis) after each step. If heapProfile is not
// empty, the server's heap profile with the streams open is saved there.
func memory(ctx context.Context, e *env, key string, n int, heapProfile string) (*memoryResult, error) {
	s, err := startConfig(ctx, e, key, true, nil)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	redisMem := func() int64 {
		if s.redis == "" {
			return 0
		}
		m, _ := usedMemory(s.redis)
		return m
	}
	hc := &http.Client{Transport: newTransport(16), Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	// One call before the baseline, so that what is made once (schemas,
	// pools, the connection) is not counted per session.
	warm := &mcpCaller{hc: hc, url: s.base + "/mcp"}
	if err := warm.initialize(ctx); err != nil {
		return nil, err
	}
	base, err := s.stats()
	if err != nil {
		return nil, err
	}
	r0 := redisMem()
	sessions := make([]string, n)
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				c := &mcpCaller{hc: hc, url: s.base + "/mcp"}
				if err := c.initialize(ctx); err != nil {
					errc <- err
					return
				}
				sessions[i] = c.session
			}
		}()
	}
	wg.Wait()
	hc.CloseIdleConnections()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	afterSessions, err := s.stats()
	if err != nil {
		return nil, err
	}
	r1 := redisMem()

	// One connection per stream, as each client has its own.
	st := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	defer st.CloseIdleConnections()
	streams := make([]io.Closer, 0, n)
	var mu sync.Mutex
	sem := make(chan struct{}, 64)
	for _, id := range sessions {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/mcp", nil)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Mcp-Session-Id", id)
			req.Header.Set("Mcp-Protocol-Version", legacyVersion)
			resp, err := st.RoundTrip(req)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET stream: status %d", resp.StatusCode)
			}
			if err == nil {
				// The priming event: the stream is open and registered.
				_, err = bufio.NewReaderSize(resp.Body, 64).ReadString('\n')
			}
			if err != nil {
				select {
				case errc <- err:
				default:
				}
				return
			}
			mu.Lock()
			streams = append(streams, resp.Body)
			mu.Unlock()
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range streams {
			c.Close()
		}
	}()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	time.Sleep(time.Second)
	afterStreams, err := s.stats()
	if err != nil {
		return nil, err
	}
	r2 := redisMem()
	if heapProfile != "" {
		if err := s.saveHeapProfile(heapProfile); err != nil {
			return nil, err
		}
	}
	return &memoryResult{Key: key, Desc: configDesc[key], N: n,
		Session: delta(base, afterSessions, r0, r1, n), Stream: delta(afterSessions, afterStreams, r1, r2, n)}, nil
}

// oauthResult is the authorization server's figures.
type oauthResult struct {
	Command   string      `json:"command"`
	Flows     int         `json:"flows"`
	FlowP50ms float64     `json:"flow_p50_ms"`
	FlowP99ms float64     `json:"flow_p99_ms"`
	FlowMaxMs float64     `json:"flow_max_ms"`
	Refresh   *loadResult `json:"refresh"`
}

// oauthBench times whole flows one after another (registration ⇒
// authorize ⇒ consent ⇒ development provider ⇒ callback ⇒ token), then
// drives refresh grants, one grant per connection.
func oauthBench(ctx context.Context, e *env, o *options) (*oauthResult, error) {
	s, err := startConfig(ctx, e, "c", false, nil)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	hc := &http.Client{Transport: newTransport(o.conns), Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer hc.CloseIdleConnections()
	type grant struct {
		c  *oauthClient
		rt string
	}
	var grants []grant
	var took []time.Duration
	for i := range max(o.flows, o.conns) {
		t0 := time.Now()
		c, t, err := flow(ctx, s.base, hc, fmt.Sprintf("flow-%d", i))
		if err != nil {
			return nil, err
		}
		if i < o.flows {
			took = append(took, time.Since(t0))
		}
		grants = append(grants, grant{c, t.Refresh})
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	res := &oauthResult{Command: s.command(), Flows: len(took),
		FlowP50ms: percentile(took, 0.5) / 1e3, FlowP99ms: percentile(took, 0.99) / 1e3}
	res.FlowMaxMs = float64(took[len(took)-1].Microseconds()) / 1e3
	steps := make([]step, o.conns)
	for i := range o.conns {
		g := &grants[i]
		steps[i] = func(ctx context.Context) error {
			// Not cut off by the end of a round: a rotation the client
			// did not see would make its next refresh a reuse.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			t, err := g.c.refresh(ctx, g.rt)
			if err != nil {
				return err
			}
			g.rt = t.Refresh
			return nil
		}
	}
	res.Refresh = loadPlan{warmup: o.warmup, round: o.round, rounds: o.rounds, cpu: s.proc.cpuTime}.run(ctx, steps)
	if res.Refresh.Errors > 0 {
		return nil, fmt.Errorf("refresh: %d errors, the first: %s", res.Refresh.Errors, res.Refresh.FirstErr)
	}
	return res, nil
}

// profileResult is a CPU profile under full load and its top functions.
type profileResult struct {
	Key  string `json:"key"`
	File string `json:"file"`
	Top  string `json:"top"`
}

// startInstrumented starts the instrumented build of configuration key
// with its callers on o.conns connections; stop ends both.
func startInstrumented(ctx context.Context, e *env, o *options, key string) (*server, []step, func(), error) {
	s, err := startConfig(ctx, e, key, true, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	hc := &http.Client{Transport: newTransport(o.conns), Timeout: 30 * time.Second}
	stop := func() { hc.CloseIdleConnections(); s.stop() }
	steps, err := s.callers(ctx, hc, o.conns)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return s, steps, stop, nil
}

// profile takes a CPU profile of configuration key (the instrumented
// build, for remotemcp) under the throughput load.
func profile(ctx context.Context, e *env, o *options, key string) (*profileResult, error) {
	s, steps, stop, err := startInstrumented(ctx, e, o, key)
	if err != nil {
		return nil, err
	}
	defer stop()
	done := make(chan *loadResult)
	go func() {
		done <- loadPlan{warmup: time.Second, round: o.profile + 2*time.Second, rounds: 1}.run(ctx, steps)
	}()
	time.Sleep(2 * time.Second)
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.debug, int(o.profile.Seconds())))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	dir := filepath.Join(o.out, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "cpu-"+key+".pb.gz")
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, resp.Body)
	f.Close()
	if err != nil {
		return nil, err
	}
	if r := <-done; r.Errors > 0 {
		return nil, fmt.Errorf("%d errors under profiling: %s", r.Errors, r.FirstErr)
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=30", file).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w", err)
	}
	return &profileResult{Key: key, File: filepath.Join("profiles", "cpu-"+key+".pb.gz"), Top: string(top)}, nil
}

// soakResult is a soak at a fixed rate: the server's heap and goroutines
// sampled along the way.
type soakResult struct {
	Key             string      `json:"key"`
	Seconds         float64     `json:"seconds"`
	Rate            float64     `json:"rate"`
	Load            *loadResult `json:"load"`
	Samples         []stats     `json:"samples"`
	HeapGrowth      float64     `json:"heap_growth_bytes"`
	GoroutineGrowth float64     `json:"goroutine_growth"`
	RSSGrowth       float64     `json:"rss_growth_bytes"`
	// GrownStacks are the goroutine stacks that had more goroutines at
	// the last sample than at the second (profiles/goroutines-*.txt).
	GrownStacks []string `json:"grown_stacks,omitempty"`
	// ServerGoroutineGrowth is the growth from the second sample to the
	// last of the goroutines other than idle keep-alive connections (whose
	// number is the load generator's, up to its connections).
	ServerGoroutineGrowth int `json:"server_goroutine_growth"`
}

func soak(ctx context.Context, e *env, o *options, key string, rate float64) (*soakResult, error) {
	s, steps, stop, err := startInstrumented(ctx, e, o, key)
	if err != nil {
		return nil, err
	}
	defer stop()
	// Warm up at the soak rate, then sample at 10 points.
	loadPlan{round: 10 * time.Second, rounds: 1, rate: rate}.run(ctx, steps)
	res := &soakResult{Key: key, Seconds: o.soak.Seconds(), Rate: rate}
	// Each sample a second after the load pauses: what a request leaves
	// running for a moment after its answer (a session closing) is done.
	const settle = time.Second
	time.Sleep(settle)
	first, err := s.stats()
	if err != nil {
		return nil, err
	}
	res.Samples = append(res.Samples, *first)
	const points = 10
	res.Load = &loadResult{Conns: o.conns, RateLimit: rate}
	dir := filepath.Join(o.out, "profiles")
	var early goroutineDump
	for i := range points {
		r := loadPlan{round: o.soak / points, rounds: 1, rate: rate}.run(ctx, steps)
		res.Load.Rounds = append(res.Load.Rounds, r.Rounds...)
		res.Load.Errors += r.Errors
		if res.Load.FirstErr == "" {
			res.Load.FirstErr = r.FirstErr
		}
		time.Sleep(settle)
		st, err := s.stats()
		if err != nil {
			return nil, err
		}
		res.Samples = append(res.Samples, *st)
		switch i {
		case 0: // the second sample: pools have reached their working size
			if early, err = s.goroutines(dir, "goroutines-soak-"+key+"-early.txt"); err != nil {
				return nil, err
			}
		case points - 1:
			last, err := s.goroutines(dir, "goroutines-soak-"+key+"-last.txt")
			if err != nil {
				return nil, err
			}
			res.GrownStacks = goroutineGrowth(early, last, 8)
			res.ServerGoroutineGrowth = last.count(true) - early.count(true)
		}
	}
	res.Load.RPS = median(res.Load.Rounds, func(r roundResult) float64 { return r.RPS })
	res.Load.P50us = median(res.Load.Rounds, func(r roundResult) float64 { return r.P50us })
	res.Load.P99us = median(res.Load.Rounds, func(r roundResult) float64 { return r.P99us })
	// Growth is the mean of the last three samples less that of the three
	// after the first: the first is taken right after the warm-up, before
	// pools (connections, buffers) have reached their working size.
	trend := func(f func(stats) float64) float64 {
		mean := func(xs []stats) float64 {
			t := 0.0
			for _, x := range xs {
				t += f(x)
			}
			return t / float64(len(xs))
		}
		return mean(res.Samples[len(res.Samples)-3:]) - mean(res.Samples[1:4])
	}
	res.HeapGrowth = trend(func(s stats) float64 { return s.HeapAlloc })
	res.GoroutineGrowth = trend(func(s stats) float64 { return s.Goroutines })
	res.RSSGrowth = trend(func(s stats) float64 { return s.RSS })
	return res, nil
}
