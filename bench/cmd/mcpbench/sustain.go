package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// sustainSample is one point of a sustained run.
type sustainSample struct {
	Seconds   float64 `json:"seconds"` // since the start of the measured run
	Calls     int     `json:"calls"`   // so far
	RSS       float64 `json:"rss"`     // the server's VmRSS, in bytes
	RedisUsed int64   `json:"redis_used_memory,omitempty"`
	RedisKeys int64   `json:"redis_keys,omitempty"`
}

// sustainResult is a sustained legacy run: the real binary (not the
// instrumented one: its RSS is what a deployment sees) under legacy
// tools/calls at the configuration's measured rate for a long time, with
// the server's RSS and Redis' used_memory sampled along the way. Memory
// that grows with every call (rather than with the calls of the last
// resume window) shows as a last sample well above the first.
type sustainResult struct {
	Key     string          `json:"key"`
	Desc    string          `json:"description"`
	Seconds float64         `json:"seconds"`
	Rate    float64         `json:"rate"` // 0: flat out
	Load    *loadResult     `json:"load"`
	Samples []sustainSample `json:"samples"`
}

// sustain drives configuration key for d at rate calls/s (0: flat out)
// after a 5 s warm-up, sampling 11 times.
func sustain(ctx context.Context, e *env, o *options, key string, rate float64, d time.Duration) (*sustainResult, error) {
	s, err := startConfig(ctx, e, key, false, nil)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	hc := &http.Client{Transport: newTransport(o.conns), Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	steps, err := s.callers(ctx, hc, o.conns)
	if err != nil {
		return nil, err
	}
	warm := loadPlan{round: 5 * time.Second, rounds: 1, rate: rate}.run(ctx, steps)
	if warm.Errors > 0 {
		return nil, fmt.Errorf("warm-up: %d errors, the first: %s", warm.Errors, warm.FirstErr)
	}
	res := &sustainResult{Key: key, Desc: configDesc[key], Seconds: d.Seconds(), Rate: rate, Load: &loadResult{Conns: o.conns, RateLimit: rate}}
	start, calls := time.Now(), 0
	sample := func() error {
		p := sustainSample{Seconds: time.Since(start).Seconds(), Calls: calls, RSS: s.proc.rss()}
		if s.redis != "" {
			var err error
			if p.RedisUsed, err = usedMemory(s.redis); err != nil {
				return err
			}
			if p.RedisKeys, err = dbSize(s.redis); err != nil {
				return err
			}
		}
		res.Samples = append(res.Samples, p)
		logf("  %s %3.0f s: %d calls, RSS %.1f MiB, Redis %.1f MiB in %d keys", key, p.Seconds, p.Calls, p.RSS/(1<<20), float64(p.RedisUsed)/(1<<20), p.RedisKeys)
		return nil
	}
	if err := sample(); err != nil {
		return nil, err
	}
	const points = 10
	for range points {
		r := loadPlan{round: d / points, rounds: 1, rate: rate}.run(ctx, steps)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res.Load.Rounds = append(res.Load.Rounds, r.Rounds...)
		res.Load.Errors += r.Errors
		if res.Load.FirstErr == "" {
			res.Load.FirstErr = r.FirstErr
		}
		for _, rr := range r.Rounds {
			calls += rr.Ops
		}
		if err := sample(); err != nil {
			return nil, err
		}
	}
	res.Load.summarize()
	if res.Load.Errors > 0 {
		return nil, fmt.Errorf("%d errors, the first: %s", res.Load.Errors, res.Load.FirstErr)
	}
	return res, nil
}
