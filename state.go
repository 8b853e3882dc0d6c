package remotemcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
	mcpredis "github.com/remotemcp/remotemcp/mcpserver/redisstore"
)

// state is where the server keeps its state: in process, or in Redis
// with Options.RedisURL.
type state struct {
	rdb    redis.UniversalClient // nil in process
	health *redisHealth          // nil in process
	mcp    mcpserver.Stores
}

// openState opens the stores of s; cl gets what closes them.
func openState(ctx context.Context, s *settings, cl *closers) (*state, error) {
	if s.RedisURL == "" {
		return &state{mcp: memstore.New(&memstore.Options{SessionTTL: s.SessionTTL, MaxSessionsPerSubject: s.MaxSessionsPerUser,
			ResumeWindow: s.ResumeWindow, MaxLoggedBytes: s.MaxSessionLogBytes})}, nil
	}
	rdb, err := newRedis(s.RedisURL, s.RedisMode)
	if err != nil {
		return nil, err
	}
	cl.add(func() { rdb.Close() })
	s.metrics.instrumentRedis(rdb)
	health := startRedisHealth(ctx, rdb, s.Logger.With("component", "redis"), time.Second)
	cl.add(health.Close)
	stores, stop := mcpredis.New(rdb, &mcpredis.Options{
		SessionTTL: s.SessionTTL, MaxSessionsPerSubject: s.MaxSessionsPerUser,
		ResumeWindow: s.ResumeWindow, MaxLoggedBytes: s.MaxSessionLogBytes,
		Logger: s.Logger.With("component", "mcpstore"),
	})
	cl.add(func() { stop() })
	s.Logger.Info("state in Redis", "url", redactURL(s.RedisURL), "mode", s.RedisMode)
	return &state{rdb: rdb, health: health, mcp: stores}, nil
}

// newRedis builds the Redis client of a URL and mode (see
// Options.RedisURL): go-redis' ParseURL, ParseFailoverURL and
// ParseClusterURL, so options such as dial_timeout may be added as query
// parameters. Every command is bounded by its context
// (ContextTimeoutEnabled) and by short default timeouts, so that a Redis
// that hangs makes requests fail fast with 503 instead of piling up.
func newRedis(rawURL, mode string) (redis.UniversalClient, error) {
	switch mode {
	case "", "single":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, redisURLError(rawURL, err)
		}
		failFast(&o.ContextTimeoutEnabled, &o.MaxRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout)
		return redis.NewClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, redisURLError(rawURL, err)
		}
		if o.MasterName == "" {
			return nil, errors.New("redis mode sentinel needs master_name=<name> in the Redis URL")
		}
		failFast(&o.ContextTimeoutEnabled, &o.MaxRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout)
		return redis.NewFailoverClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, redisURLError(rawURL, err)
		}
		failFast(&o.ContextTimeoutEnabled, &o.MaxRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout)
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("redis mode %q: want single, sentinel or cluster", mode)
}

// CheckRedisURL reports whether rawURL and mode make a Redis client (see
// Options.RedisURL), without connecting: for a program that checks its
// configuration before it starts.
func CheckRedisURL(rawURL, mode string) error {
	rdb, err := newRedis(rawURL, mode)
	if err != nil {
		return err
	}
	return rdb.Close()
}

// failFast bounds every command by its context, retries once (the health
// gate and the clients retry), and gives 2s timeouts where the URL left
// them at zero: the same for the option types of each mode.
func failFast(ctxTimeout *bool, retries *int, timeouts ...*time.Duration) {
	*ctxTimeout = true
	if *retries == 0 {
		*retries = 1
	}
	for _, t := range timeouts {
		if *t == 0 {
			*t = 2 * time.Second
		}
	}
}

// redisURLError names the URL without its password.
func redisURLError(raw string, err error) error {
	return fmt.Errorf("redis URL %q: %v", redactURL(raw), err)
}

// redactURL hides the password of a URL, for errors and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// redisHealth pings Redis in the background, so that readiness and the
// request gate answer from memory: when Redis is unreachable the replica
// reports not ready and answers 503 with Retry-After at once (never a 401
// that would send clients into re-authorization), and it recovers by
// itself when Redis is back.
type redisHealth struct {
	rdb redis.UniversalClient
	up  atomic.Bool
	// checked is set after the first check (only the pinger goroutine, or
	// the constructor before it starts, touches it).
	checked bool
	log     *slog.Logger
	stop    context.CancelFunc
	done    chan struct{}
}

func startRedisHealth(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger, every time.Duration) *redisHealth {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &redisHealth{rdb: rdb, log: log, stop: cancel, done: make(chan struct{})}
	h.check(ctx) // the first verdict before serving
	go func() {
		defer close(h.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				h.check(ctx)
			}
		}
	}()
	return h
}

func (h *redisHealth) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	err := h.rdb.Ping(ctx).Err()
	was := h.up.Swap(err == nil)
	switch {
	case err != nil && (was || !h.checked):
		h.log.Error("redis unreachable: answering 503 until it is back", "err", err)
	case err == nil && !was:
		h.log.Info("redis reachable")
	}
	h.checked = true
}

// Close stops the pinger.
func (h *redisHealth) Close() {
	h.stop()
	<-h.done
}

// gate answers 503 with Retry-After while Redis is down, for every path
// that needs it (everything but health checks and static metadata).
func (h *redisHealth) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.up.Load() && needsStore(r.URL.Path) {
			w.Header().Set("Retry-After", "2")
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "temporarily unavailable: the shared store cannot be reached; retry shortly", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// needsStore reports whether a path's answer depends on the shared store.
func needsStore(path string) bool {
	return path != "/healthz" && path != "/readyz" && !strings.HasPrefix(path, "/.well-known/") && path != "/jwks"
}

// closers are the clean-ups of what New started, run in reverse order.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }

func (c closers) close() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}
