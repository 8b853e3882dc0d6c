package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A step is one operation of one load-generator connection (one tools/call,
// one refresh grant); it returns an error when the answer is not the
// expected one.
type step func(ctx context.Context) error

// loadPlan is how a configuration is driven: a closed loop of len(steps)
// workers (one connection each), a warm-up that is not measured, then
// rounds of a fixed duration; the reported figures are the medians of the
// rounds. With rate > 0 the workers share that many operations per second
// instead of running flat out (the soak).
type loadPlan struct {
	warmup, round time.Duration
	rounds        int
	rate          float64
	// cpu, if set, is the CPU time used so far by the server process.
	cpu func() time.Duration
}

// roundResult is one measured round.
type roundResult struct {
	Ops      int     `json:"ops"`
	Errors   int     `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	CPUPerOp float64 `json:"server_cpu_us_per_op,omitempty"`
}

// loadResult is a configuration's rounds and their medians.
type loadResult struct {
	Conns     int           `json:"conns"`
	Rounds    []roundResult `json:"rounds"`
	RPS       float64       `json:"rps_median"`
	P50us     float64       `json:"p50_us_median"`
	P99us     float64       `json:"p99_us_median"`
	CPUPerOp  float64       `json:"server_cpu_us_per_op_median,omitempty"`
	Errors    int           `json:"errors"`
	FirstErr  string        `json:"first_error,omitempty"`
	RateLimit float64       `json:"rate_limit,omitempty"`
}

// run drives steps per plan. The warm-up's errors count too: a
// configuration that fails at all is reported as failing.
func (p loadPlan) run(ctx context.Context, steps []step) *loadResult {
	res := &loadResult{Conns: len(steps), RateLimit: p.rate}
	var firstErr atomic.Value
	if p.warmup > 0 {
		r := p.once(ctx, steps, p.warmup, &firstErr)
		res.Errors += r.Errors
	}
	for range p.rounds {
		if ctx.Err() != nil {
			break
		}
		r := p.once(ctx, steps, p.round, &firstErr)
		res.Rounds = append(res.Rounds, r)
		res.Errors += r.Errors
	}
	if e, ok := firstErr.Load().(string); ok {
		res.FirstErr = e
	}
	res.summarize()
	return res
}

// summarize sets the medians of the rounds.
func (res *loadResult) summarize() {
	res.RPS = median(res.Rounds, func(r roundResult) float64 { return r.RPS })
	res.P50us = median(res.Rounds, func(r roundResult) float64 { return r.P50us })
	res.P99us = median(res.Rounds, func(r roundResult) float64 { return r.P99us })
	res.CPUPerOp = median(res.Rounds, func(r roundResult) float64 { return r.CPUPerOp })
}

// once runs every worker for d and gathers the latencies of the operations
// that ended within it.
func (p loadPlan) once(ctx context.Context, steps []step, d time.Duration, firstErr *atomic.Value) roundResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var tokens <-chan time.Time
	if p.rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / p.rate))
		defer t.Stop()
		tokens = t.C
	}
	lat := make([][]time.Duration, len(steps))
	errs := make([]int, len(steps))
	var cpu0 time.Duration
	if p.cpu != nil {
		cpu0 = p.cpu()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, s := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if tokens != nil {
					select {
					case <-tokens:
					case <-ctx.Done():
						return
					}
				}
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := s(ctx)
				if ctx.Err() != nil {
					return // cut off by the end of the round: not counted
				}
				if err != nil {
					errs[i]++
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	r := roundResult{Seconds: elapsed.Seconds()}
	for i := range steps {
		all = append(all, lat[i]...)
		r.Errors += errs[i]
	}
	slices.Sort(all)
	r.Ops = len(all)
	r.RPS = float64(len(all)) / elapsed.Seconds()
	r.P50us = percentile(all, 0.50)
	r.P99us = percentile(all, 0.99)
	if p.cpu != nil && len(all) > 0 {
		r.CPUPerOp = float64((p.cpu() - cpu0).Microseconds()) / float64(len(all))
	}
	return r
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i].Nanoseconds()) / 1e3
}

func median[T any](xs []T, f func(T) float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// newTransport is a keep-alive HTTP client transport for conns connections.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		MaxConnsPerHost:     conns,
		MaxIdleConnsPerHost: conns,
		MaxIdleConns:        conns,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

var errStatus = errors.New("unexpected status")

func statusErr(op string, got int, body []byte) error {
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Errorf("%s: %w %d: %s", op, errStatus, got, body)
}
