package remotemcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
)

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then drains within
// Options.ShutdownTimeout: /readyz answers 503 at once, new connections are
// refused, ordinary requests get half the timeout to finish, and then the
// long-lived SSE streams end. It returns nil after a clean drain. It first
// checks that every item of the registry has a rule (policy.Registry.Verify),
// for those added after New, and that ln is on loopback with Options.Dev.
// Serve closes ln; the caller still calls Close.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.opts.Logger
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); s.opts.Dev && !mcpserver.IsLoopbackHost(host) {
		ln.Close()
		return fmt.Errorf("remotemcp: Dev is only for a server on loopback, and the listener %s is not", ln.Addr())
	}
	// Not ctx itself: a ctx that ends while the check runs is a stop, which
	// the drain below handles, not a failed check.
	if err := s.reg.Verify(context.WithoutCancel(ctx)); err != nil {
		ln.Close()
		return err
	}
	// Request contexts derive from base; cancelling it ends long-lived SSE
	// streams at shutdown so they don't hold the drain open.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	conns := &connTracker{m: map[net.Conn]http.ConnState{}}
	srv := &http.Server{
		ConnState:         conns.track,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second, // the request, not the (streamed) response
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", s.opts.ShutdownTimeout)
	s.draining.Store(true)
	if err := shutdown(srv, conns, s.opts.ShutdownTimeout, cancelBase); err != nil {
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
