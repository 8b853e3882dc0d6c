package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
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
	// ready is nil when the server can serve, else why not: the shared
	// store is unreachable, or the identity provider has not answered yet.
	ready func() error
}

// build assembles the server of cfg: its state, the --auth proxy
// authorization server, the MCP server with its items, and the routes.
func build(ctx context.Context, cfg *config, log *slog.Logger) (_ *app, err error) {
	// bg is the app's lifetime: the fixtures and the verifier run in it.
	bg, cancel := context.WithCancel(ctx)
	var cl closers
	closeAll := func() {
		cancel()
		cl.close()
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	st, err := newState(ctx, cfg, log, &cl)
	if err != nil {
		return nil, err
	}
	var px *proxy
	if cfg.Auth == "proxy" {
		// bg: a discovery of the upstream retried in the background ends with the app.
		if px, err = newProxy(bg, cfg, log, st.rdb); err != nil {
			return nil, err
		}
		cl.add(px.close)
	}
	reg, err := newRegistry(ctx, bg, cfg, log, st, px)
	if err != nil {
		return nil, err
	}
	mcpHandler := newMCPHandler(cfg, log, reg, st.mcp)
	cl.add(func() { mcpHandler.Close() })

	mux := http.NewServeMux()
	endpoint, idp, err := authenticate(bg, cfg, log, mux, mcpHandler, px)
	if err != nil {
		return nil, err
	}
	if idp != nil {
		cl.add(idp.close)
	}
	mux.Handle("/mcp", endpoint)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	a := &app{handler: mux, close: closeAll, ready: func() error { return nil }}
	if idp != nil {
		a.handler, a.ready = idp.gate(a.handler), idp.err
	}
	if st.health != nil {
		a.handler = st.health.gate(a.handler)
		idpReady := a.ready
		a.ready = func() error {
			if !st.health.up.Load() {
				return errors.New("the shared store is unreachable")
			}
			return idpReady()
		}
	}
	return a, nil
}

// closers are the clean-ups of what build started, run in reverse order.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }

func (c closers) close() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// noteStore is what the notes tools, resources and prompts keep notes in.
type noteStore interface {
	notes.Store
	notes.ExportStore
}

// state is where the server keeps its state: in process, or in Redis
// with --redis-url.
type state struct {
	rdb    redis.UniversalClient // nil in process
	health *redisHealth          // nil in process
	mcp    mcpserver.Stores
	notes  noteStore
}

// newState opens the stores of cfg; cl gets what closes them.
func newState(ctx context.Context, cfg *config, log *slog.Logger, cl *closers) (*state, error) {
	if cfg.RedisURL == "" {
		return &state{
			mcp: memstore.New(&memstore.Options{SessionTTL: cfg.SessionTTL, MaxSessionsPerSubject: cfg.MaxSessionsPerUser,
				ResumeWindow: cfg.ResumeWindow, MaxLoggedBytes: cfg.LogMaxBytes}),
			notes: notesmem.New(&notesmem.Options{Limits: cfg.NoteLimits, MaxBytes: cfg.MaxMemoryStoreBytes}),
		}, nil
	}
	rdb, err := newRedis(cfg.RedisURL, cfg.RedisMode)
	if err != nil {
		return nil, err
	}
	cl.add(func() { rdb.Close() })
	health := startRedisHealth(ctx, rdb, log.With("component", "redis"), time.Second)
	cl.add(health.Close)
	stores, stop := mcpredis.New(rdb, &mcpredis.Options{
		SessionTTL: cfg.SessionTTL, MaxSessionsPerSubject: cfg.MaxSessionsPerUser,
		ResumeWindow: cfg.ResumeWindow, MaxLoggedBytes: cfg.LogMaxBytes,
		Logger: log.With("component", "mcpstore"),
	})
	cl.add(func() { stop() })
	log.Info("state in Redis", "url", redactURL(cfg.RedisURL), "mode", cfg.RedisMode)
	return &state{rdb: rdb, health: health, mcp: stores, notes: notesredis.New(rdb, &notesredis.Options{Limits: cfg.NoteLimits})}, nil
}

// newRegistry makes the MCP server and registers its items: the notes
// tools, resources and prompts, and the conformance fixtures when
// enabled. Each item declares what it needs as it is registered; what has
// no rule is never served. bg bounds the fixtures' background work.
func newRegistry(ctx, bg context.Context, cfg *config, log *slog.Logger, st *state, px *proxy) (*policy.Registry, error) {
	sealer := mcpserver.NewStateSealer(cfg.StateKey, 0)
	notifier := mcpserver.NewNotifier(st.mcp.Broadcaster)
	var h handlers
	server := mcp.NewServer(&mcp.Implementation{Name: "remotemcp", Title: "remotemcp", Version: version}, &mcp.ServerOptions{
		Instructions:              "remotemcp: per-user notes with search, export and prompts.",
		Logger:                    sdkLogger(log.With("component", "mcp")),
		SupportedProtocolVersions: mcpserver.SupportedVersions,
		CompletionHandler:         h.complete,
		SubscribeHandler:          h.subscribe,
		UnsubscribeHandler:        func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	deps := tools.Deps{Notes: st.notes, Exports: st.notes, Notifier: notifier, Sealer: sealer,
		Scopes: tools.Scopes{Read: cfg.ScopeRead, Write: cfg.ScopeWrite}, Limits: cfg.NoteLimits}
	if px != nil {
		deps.Upstream = px
	}
	reg := policy.New(server, &policy.Options{Implies: map[string][]string{cfg.ScopeWrite: {cfg.ScopeRead}}})
	tools.Register(reg, deps)
	res := resources.Register(reg, st.notes, st.notes, cfg.ScopeRead)
	prm := prompts.Register(reg, st.notes, cfg.ScopeRead)
	h.add(prm.Complete, res.Subscribe)
	// A listen stream may subscribe to notes; it needs the read scope.
	reg.Method("subscriptions/listen", policy.Need(cfg.ScopeRead))
	if cfg.Fixtures == "conformance" {
		fixtures.Register(bg, reg, sealer, notifier)
		h.add(fixtures.Complete, fixtures.Subscribe)
	}
	if err := reg.Verify(ctx); err != nil {
		return nil, err
	}
	return reg, nil
}

// A completer answers completion/complete for the references it owns;
// handled is false for the others.
type completer func(context.Context, *mcp.CompleteRequest) (res *mcp.CompleteResult, handled bool, err error)

// A subscriber answers resources/subscribe for the URIs it owns; handled
// is false for the others.
type subscriber func(context.Context, *mcp.SubscribeRequest) (handled bool, err error)

// handlers are the server-wide completion and subscription handlers, made
// of what each feature contributes, asked in the order they were added.
// The server is made before its features register, so the lists are
// filled after; all of it happens before the server serves.
type handlers struct {
	completers  []completer
	subscribers []subscriber
}

// add contributes a feature's completer and subscriber.
func (h *handlers) add(c completer, s subscriber) {
	h.completers = append(h.completers, c)
	h.subscribers = append(h.subscribers, s)
}

func (h *handlers) complete(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	for _, c := range h.completers {
		if r, ok, err := c(ctx, req); ok {
			return r, err
		}
	}
	return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{}}}, nil
}

func (h *handlers) subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	for _, s := range h.subscribers {
		if ok, err := s(ctx, req); ok {
			return err
		}
	}
	return mcp.ResourceNotFoundError(req.Params.URI)
}

// newMCPHandler is the /mcp handler: the server of reg on stores, with
// cfg's origin, host and body limits.
func newMCPHandler(cfg *config, log *slog.Logger, reg *policy.Registry, stores mcpserver.Stores) *mcpserver.Handler {
	opts := &mcpserver.Options{
		AllowedOrigins:   cfg.AllowedOrigins,
		MaxBodyBytes:     cfg.MaxBodyBytes,
		MaxBatchMessages: cfg.MaxBatchMessages,
		MaxResponseBytes: cfg.MaxResponseBytes,
		Policy:           reg,
		Logger:           log.With("component", "mcpserver"),
	}
	if cfg.dev {
		opts.AllowLoopbackOrigins = true
	}
	if cfg.loopback() { // DNS rebinding: also behind a reverse proxy
		opts.AllowedHosts = []string{"localhost", "127.0.0.1", "::1", cfg.PublicURL.Hostname()}
	}
	return mcpserver.NewHandler(reg.Server(), stores, opts)
}

// authenticate is mcpHandler behind the bearer-token check of cfg.Auth
// (mcpHandler itself with --auth none), and mounts on mux what that mode
// serves: the protected-resource metadata and, with --auth proxy (px),
// the authorization server. The wait, if not nil, is for an identity
// provider that could not be reached yet.
func authenticate(bg context.Context, cfg *config, log *slog.Logger, mux *http.ServeMux, mcpHandler *mcpserver.Handler, px *proxy) (http.Handler, *idpWait, error) {
	if cfg.Auth == "none" {
		return mcpHandler, nil, nil
	}
	var verify resource.Verifier
	var wait *idpWait
	authServer := cfg.AuthorizationServer
	if px != nil {
		verify, wait = px.issuer.Verify, px.wait
		px.mount(mux)
		authServer = px.base
	} else {
		var err error
		if verify, wait, err = startVerifier(bg, cfg, log); err != nil {
			return nil, nil, err
		}
	}
	read := cfg.ScopeRead
	metadata := wellknown.ProtectedResourceHandler(wellknown.ProtectedResource{
		Resource:             cfg.endpoint(),
		AuthorizationServers: []string{authServer},
		ScopesSupported:      []string{read},
		ResourceName:         "remotemcp notes",
	})
	for _, p := range wellknown.MetadataPaths(cfg.endpoint()) {
		mux.Handle(p, metadata)
	}
	return resource.RequireBearer(verify, &resource.BearerOptions{
		ResourceMetadataURL: wellknown.MetadataURL(cfg.endpoint()),
		Scopes:              []string{read},
		CheckScopes:         mcpHandler.CheckScopes,
		Logger:              log.With("component", "authz"),
	})(mcpHandler), wait, nil
}
