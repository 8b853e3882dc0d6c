package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

func serve(ctx context.Context, cfg *config, stdout io.Writer) error {
	log := newLogger(cfg, stdout)
	// go-redis logs through one logger per process: into slog with the rest.
	redis.SetLogger(redisLogger{log.With("component", "redis")})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.publicURLDerived {
		// With --listen host:0 the port is known only now.
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		cfg.PublicURL.Host = net.JoinHostPort(cfg.PublicURL.Hostname(), port)
	}
	a, err := build(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.close()

	var draining atomic.Bool

	// Request contexts derive from base; cancelling it ends long-lived SSE
	// streams at shutdown so they don't hold the drain open.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	conns := &connTracker{m: map[net.Conn]http.ConnState{}}
	srv := &http.Server{
		ConnState:         conns.track,
		Handler:           a.front(log, &draining),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second, // the request, not the (streamed) response
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("remotemcp listening", "addr", ln.Addr().String(), "endpoint", cfg.endpoint(), "auth", cfg.Auth, "fixtures", cfg.Fixtures)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	draining.Store(true)
	if err := shutdown(srv, conns, cfg.ShutdownTimeout, cancelBase); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// shutdown drains srv within timeout: ordinary requests get half of it,
// then endStreams ends the long-lived streams.
func shutdown(srv *http.Server, conns *connTracker, timeout time.Duration, endStreams context.CancelFunc) error {
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	streamsEnd := time.AfterFunc(timeout/2, endStreams)
	defer streamsEnd.Stop()
	// Shutdown waits up to 5s for connections that never sent a request
	// (pre-connects, load-balancer TCP checks); they have nothing in flight,
	// so close them while the drain runs.
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-shut:
			if err != nil {
				srv.Close()
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		case <-tick.C:
			conns.closeIdleNew()
		}
	}
}

// front is the handler serve puts on the listener: a's routes plus
// /readyz (503 once draining is set), behind the access log.
func (a *app) front(log *slog.Logger, draining *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", a.handler)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		if err := a.ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ready\n")
	})
	return accessLog(log, mux)
}

// connTracker knows each connection's state, to close at shutdown those
// that never sent a request.
type connTracker struct {
	mu sync.Mutex
	m  map[net.Conn]http.ConnState
}

func (t *connTracker) track(c net.Conn, s http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s == http.StateClosed || s == http.StateHijacked {
		delete(t.m, c)
	} else {
		t.m[c] = s
	}
}

func (t *connTracker) closeIdleNew() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c, s := range t.m {
		if s == http.StateNew {
			c.Close()
		}
	}
}

// accessLog logs one line per request when its handler returns (an SSE
// stream when it ends), with the status net/http sent: never the query
// string, which could carry a credential, nor any header.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rw, r)
		logRequest(log, r, rw.status, start)
	})
}

// logRequest writes the access-log line of r.
func logRequest(log *slog.Logger, r *http.Request, status int, start time.Time) {
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	// Asked first: the attributes cost allocations even when the level
	// drops the line (--log-level warn).
	if log.Enabled(r.Context(), level) {
		log.LogAttrs(r.Context(), level, "request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Duration("duration", time.Since(start).Round(time.Microsecond)),
			slog.String("remote", r.RemoteAddr))
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
