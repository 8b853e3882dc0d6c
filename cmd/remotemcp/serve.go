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

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/authz/resource"
	"github.com/remotemcp/remotemcp/cmd/remotemcp/fixtures"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
	mcpredis "github.com/remotemcp/remotemcp/mcpserver/redisstore"
	"github.com/remotemcp/remotemcp/policy"
	"github.com/remotemcp/remotemcp/prompts"
	"github.com/remotemcp/remotemcp/resources"
	"github.com/remotemcp/remotemcp/tools"
	"github.com/remotemcp/remotemcp/tools/notes"
	notesmem "github.com/remotemcp/remotemcp/tools/notes/memstore"
	notesredis "github.com/remotemcp/remotemcp/tools/notes/redisstore"
	"github.com/remotemcp/remotemcp/wellknown"
)

// version is the server version reported in serverInfo.
var version = "0.1.0"

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// app is the assembled server: what serve runs and what tests drive.
type app struct {
	handler http.Handler
	close   func()
	// ready reports whether the shared store is reachable (always true
	// with in-process stores).
	ready func() bool
}

// noteStore is what the notes tools, resources and prompts keep notes in.
type noteStore interface {
	notes.Store
	notes.ExportStore
}

func build(ctx context.Context, cfg *config, log *slog.Logger) (*app, error) {
	var (
		rdb       redis.UniversalClient
		health    *redisHealth
		closers   []func()
		stores    mcpserver.Stores
		noteStore noteStore
	)
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if cfg.RedisURL != "" {
		var err error
		if rdb, err = newRedis(cfg.RedisURL, cfg.RedisMode); err != nil {
			return nil, err
		}
		closers = append(closers, func() { rdb.Close() })
		health = startRedisHealth(ctx, rdb, log.With("component", "redis"), time.Second)
		closers = append(closers, health.Close)
		st, stop := mcpredis.New(rdb, &mcpredis.Options{SessionTTL: cfg.SessionTTL, Logger: log.With("component", "mcpstore")})
		closers = append(closers, func() { stop() })
		stores = st
		noteStore = notesredis.New(rdb, nil)
		log.Info("state in Redis", "url", redactURL(cfg.RedisURL), "mode", cfg.RedisMode)
	} else {
		stores = memstore.New(&memstore.Options{SessionTTL: cfg.SessionTTL})
		noteStore = notesmem.New(0)
	}
	sealer := mcpserver.NewStateSealer(cfg.StateKey, 0)
	notifier := mcpserver.NewNotifier(stores.Broadcaster)

	// Completions and subscriptions are server-wide handlers; each feature
	// package answers for its own references and URIs.
	var res *resources.Resources
	var prm *prompts.Prompts
	complete := func(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
		if r, ok, err := prm.Complete(ctx, req); ok {
			return r, err
		}
		if cfg.Fixtures == "conformance" {
			if r, ok := fixtures.Complete(ctx, req); ok {
				return r, nil
			}
		}
		return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{}}}, nil
	}
	subscribe := func(ctx context.Context, req *mcp.SubscribeRequest) error {
		if ok, err := res.Subscribe(ctx, req); ok {
			return err
		}
		if cfg.Fixtures == "conformance" && fixtures.Subscribe(req.Params.URI) {
			return nil
		}
		return mcp.ResourceNotFoundError(req.Params.URI)
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "remotemcp", Title: "remotemcp", Version: version}, &mcp.ServerOptions{
		Instructions:              "remotemcp: per-user notes with search, export and prompts.",
		Logger:                    log.With("component", "mcp"),
		SupportedProtocolVersions: mcpserver.SupportedVersions,
		CompletionHandler:         complete,
		SubscribeHandler:          subscribe,
		UnsubscribeHandler:        func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	scopes := tools.Scopes{Read: cfg.ScopeRead, Write: cfg.ScopeWrite}
	var px *proxy
	if cfg.Auth == "proxy" {
		var err error
		if px, err = newProxy(ctx, cfg, log, rdb); err != nil {
			closeAll()
			return nil, err
		}
		closers = append(closers, px.close)
	}
	deps := tools.Deps{Notes: noteStore, Exports: noteStore, Notifier: notifier, Sealer: sealer, Scopes: scopes}
	if px != nil {
		deps.Upstream = px
	}
	// Each item declares what it needs as it is registered; what has no
	// rule is never served.
	reg := policy.New(server, &policy.Options{Implies: map[string][]string{cfg.ScopeWrite: {cfg.ScopeRead}}})
	tools.Register(reg, deps)
	res = resources.Register(reg, noteStore, noteStore, cfg.ScopeRead)
	prm = prompts.Register(reg, noteStore, cfg.ScopeRead)
	// A listen stream may subscribe to notes; it needs the read scope.
	reg.Method("subscriptions/listen", policy.Need(cfg.ScopeRead))
	bg, cancel := context.WithCancel(ctx)
	if cfg.Fixtures == "conformance" {
		fixtures.Register(bg, reg, sealer, notifier)
	}
	if err := reg.Verify(ctx); err != nil {
		cancel()
		closeAll()
		return nil, err
	}

	opts := &mcpserver.Options{
		AllowedOrigins: cfg.AllowedOrigins,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Policy:         reg,
		Logger:         log.With("component", "mcpserver"),
	}
	if cfg.loopback() {
		opts.AllowLoopbackOrigins = true
		opts.AllowedHosts = []string{"localhost", "127.0.0.1", "::1", cfg.PublicURL.Hostname()}
	}
	mcpHandler := mcpserver.NewHandler(server, stores, opts)

	mux := http.NewServeMux()
	var endpoint http.Handler = mcpHandler
	if cfg.Auth != "none" {
		var verify resource.Verifier
		var err error
		if px != nil {
			verify = px.issuer.Verify
			px.mount(mux)
			cfg.AuthorizationServer = px.base
		} else if verify, err = newVerifier(bg, cfg); err != nil {
			cancel()
			mcpHandler.Close()
			closeAll()
			return nil, err
		}
		read := cfg.ScopeRead
		metadataURL := wellknown.MetadataURL(cfg.endpoint())
		endpoint = resource.RequireBearer(verify, &resource.BearerOptions{
			ResourceMetadataURL: metadataURL,
			Scopes:              []string{read},
			CheckScopes:         mcpHandler.CheckScopes,
			Logger:              log.With("component", "authz"),
		})(mcpHandler)
		metadata := wellknown.ProtectedResourceHandler(wellknown.ProtectedResource{
			Resource:             cfg.endpoint(),
			AuthorizationServers: []string{cfg.AuthorizationServer},
			ScopesSupported:      []string{read},
			ResourceName:         "remotemcp notes",
		})
		for _, p := range wellknown.MetadataPaths(cfg.endpoint()) {
			mux.Handle(p, metadata)
		}
	}
	mux.Handle("/mcp", endpoint)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	a := &app{
		handler: mux,
		close: func() {
			cancel()
			mcpHandler.Close()
			closeAll()
		},
		ready: func() bool { return true },
	}
	if health != nil {
		a.handler = health.gate(mux)
		a.ready = health.up.Load
	}
	return a, nil
}

func serve(ctx context.Context, cfg *config, stdout io.Writer) error {
	log := newLogger(cfg, stdout)
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
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Give ordinary requests half the budget, then end streams.
	streamsEnd := time.AfterFunc(cfg.ShutdownTimeout/2, cancelBase)
	defer streamsEnd.Stop()
	// Shutdown waits up to 5s for connections that never sent a request
	// (pre-connects, load-balancer TCP checks); they have nothing in flight,
	// so close them while the drain runs.
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case err := <-shut:
			if err != nil {
				srv.Close()
				return fmt.Errorf("shutdown: %w", err)
			}
			done = true
		case <-tick.C:
			conns.closeIdleNew()
		}
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
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
		if !a.ready() {
			http.Error(w, "the shared store is unreachable", http.StatusServiceUnavailable)
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
