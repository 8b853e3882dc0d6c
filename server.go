package remotemcp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/policy"
)

// A Server is an MCP server on the network: the endpoint PublicURL + "/mcp"
// for both protocol eras, its authentication, the protected-resource
// metadata, the authorization server (AuthProxy), /healthz and /readyz. It
// is an http.Handler for every path it serves; Serve runs it on a
// listener with a graceful drain.
type Server struct {
	reg     *policy.Registry
	opts    *settings
	handler http.Handler
	mcp     *mcpserver.Handler
	state   *state
	proxy   *proxy // nil unless AuthProxy
	// idp is the wait for an identity provider that could not be reached
	// at start-up (nil when there was none).
	idp      *idpWait
	notifier *mcpserver.Notifier

	draining  atomic.Bool
	closeOnce sync.Once
	close     func()
}

// New returns the Server of reg's MCP server, as opts say: the go-sdk
// *mcp.Server that reg wraps (policy.New) answers on PublicURL + "/mcp" in
// both protocol eras, with the authentication, metadata, authorization
// server and state of opts. It replaces the go-sdk's
// mcp.NewStreamableHTTPHandler.
//
// Deny by default: an item (tool, prompt, resource, resource template)
// serves only if it was added through reg with the access it needs
// (policy.AddTool(reg, tool, handler, policy.Need("scope")) or
// policy.Open); one added to the *mcp.Server directly has no rule, is
// absent from the lists and answers as unknown. New returns an error
// naming such items (policy.Registry.Verify), and so does Serve for items
// added after New. Items may be added to reg after New, until the server
// serves, for those that need what the Server provides (Notifier, Redis,
// UpstreamIdentity).
//
// ctx bounds what New does before it returns (discovery of the issuer's
// keys or the upstream, the first Redis ping); the Server's background work
// runs until Close. New panics if reg is nil.
func New(ctx context.Context, reg *policy.Registry, opts *Options) (_ *Server, err error) {
	if reg == nil {
		panic("remotemcp: nil policy.Registry")
	}
	s, err := check(opts)
	if err != nil {
		return nil, err
	}
	return newFromSettings(ctx, reg, s)
}

// newFromSettings is New of settings already checked (tests set the hooks
// of settings on them).
func newFromSettings(ctx context.Context, reg *policy.Registry, s *settings) (_ *Server, err error) {
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cl := closers{cancel}
	defer func() {
		if err != nil {
			cl.close()
		}
	}()
	if s.metrics, err = newMetrics(s.Metrics, reg); err != nil {
		return nil, err
	}
	srv := &Server{reg: reg, opts: s}
	if srv.state, err = openState(ctx, s, &cl); err != nil {
		return nil, err
	}
	srv.notifier = mcpserver.NewNotifier(srv.state.mcp.Broadcaster)
	if s.Auth == AuthProxy {
		if srv.proxy, err = newProxy(ctx, bg, s, srv.state.rdb, &cl); err != nil {
			return nil, err
		}
	}
	srv.mcp = mcpserver.NewHandler(reg.Server(), srv.state.mcp, &mcpserver.Options{
		AllowedOrigins:       s.AllowedOrigins,
		AllowLoopbackOrigins: s.Dev,
		AllowedHosts:         s.AllowedHosts,
		MaxBodyBytes:         s.MaxBodyBytes,
		MaxBatchMessages:     s.MaxBatchMessages,
		MaxResponseBytes:     s.MaxResponseBytes,
		Policy:               reg,
		Logger:               s.Logger.With("component", "mcpserver"),
		Observer:             s.metrics.observer(),
	})
	s.metrics.activeSessionsFrom(srv.mcp.ActiveSessions)
	cl.add(func() { srv.mcp.Close() })

	mux := http.NewServeMux()
	endpoint, idp, err := authenticate(bg, s, mux, srv.mcp, srv.proxy)
	if err != nil {
		return nil, err
	}
	if idp != nil && srv.proxy == nil { // the proxy's is on cl already
		cl.add(idp.close)
	}
	srv.idp = idp
	mux.Handle("/mcp", endpoint)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", srv.readyz)
	var h http.Handler = mux
	if idp != nil {
		h = idp.gate(h)
	}
	if srv.state.health != nil {
		h = srv.state.health.gate(h)
	}
	srv.handler = accessLog(s.Logger, h)
	if err := reg.Verify(ctx); err != nil {
		return nil, err
	}
	srv.close = cl.close
	return srv, nil
}

// ServeHTTP implements http.Handler: /mcp, the metadata, the authorization
// server's paths, /healthz, and /readyz.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Ready reports whether the server should get traffic: false while it
// drains (Serve after its context ends), while the shared store (Redis) is
// unreachable, and while the identity provider it needs (the JWKS of
// AuthJWT, the discovery document of an "oidc" or "google" upstream) has
// not answered since start-up. /readyz answers it, with the reason.
func (s *Server) Ready() bool { return s.notReady() == nil }

// notReady is why the server should not get traffic, or nil.
func (s *Server) notReady() error {
	switch {
	case s.draining.Load():
		return errors.New("draining")
	case s.state.health != nil && !s.state.health.up.Load():
		return errors.New("the shared store is unreachable")
	}
	return s.idp.err()
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.notReady(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ready\n")
}

// Close stops the server's background work and closes its stores. Call it
// once the server no longer serves (after Serve returns).
func (s *Server) Close() error {
	s.closeOnce.Do(s.close)
	return nil
}

// Notifier tells clients that a user's resource changed, on every replica
// (through Redis with Options.RedisURL): only that user's subscribed
// sessions and subscriptions/listen streams hear of it.
func (s *Server) Notifier() *mcpserver.Notifier { return s.notifier }

// Redis is the server's Redis client (nil without Options.RedisURL), for
// the stores of the program's own items: every command is bounded by its
// context and short timeouts. The Server closes it.
func (s *Server) Redis() redis.UniversalClient { return s.state.rdb }

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
	// drops the line.
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
