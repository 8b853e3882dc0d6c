package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp"
	"github.com/remotemcp/remotemcp/cmd/remotemcp/fixtures"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/policy"
	"github.com/remotemcp/remotemcp/prompts"
	"github.com/remotemcp/remotemcp/resources"
	"github.com/remotemcp/remotemcp/tools"
	"github.com/remotemcp/remotemcp/tools/notes"
	notesmem "github.com/remotemcp/remotemcp/tools/notes/memstore"
	notesredis "github.com/remotemcp/remotemcp/tools/notes/redisstore"
)

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// app is the assembled server: what serve runs and what tests drive.
type app struct {
	handler *remotemcp.Server
	close   func()
}

// build assembles the server of cfg through the public API: the notes
// product's MCP server and its items, on a remotemcp.Server configured by
// options(cfg).
func build(ctx context.Context, cfg *config, log *slog.Logger) (_ *app, err error) {
	var h handlers
	server := mcp.NewServer(&mcp.Implementation{Name: "remotemcp", Title: "remotemcp", Version: version}, &mcp.ServerOptions{
		Instructions:              "remotemcp: per-user notes with search, export and prompts.",
		Logger:                    sdkLogger(log.With("component", "mcp")),
		SupportedProtocolVersions: mcpserver.SupportedVersions,
		CompletionHandler:         h.complete,
		SubscribeHandler:          h.subscribe,
		UnsubscribeHandler:        func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	reg := policy.New(server, &policy.Options{Implies: map[string][]string{cfg.ScopeWrite: {cfg.ScopeRead}}, ListStepUp: cfg.ListStepUp})
	srv, err := remotemcp.New(ctx, reg, options(cfg, log))
	if err != nil {
		return nil, err
	}
	// bg is the app's lifetime: the fixtures run in it.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a := &app{handler: srv, close: func() { cancel(); srv.Close() }}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	register(bg, cfg, reg, srv, &h)
	if err := cfg.applyToolRules(reg); err != nil {
		return nil, err
	}
	if err := reg.Verify(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// options maps the configuration of the flags and environment to the
// public API's.
func options(cfg *config, log *slog.Logger) *remotemcp.Options {
	o := &remotemcp.Options{
		PublicURL: cfg.PublicURL.String(),
		Auth:      remotemcp.Auth(cfg.Auth),
		Scopes: []remotemcp.Scope{
			{Name: cfg.ScopeRead, Description: "Read your notes, search them and export them"},
			{Name: cfg.ScopeWrite, Description: "Create and delete your notes"},
		},
		RequiredScopes: []string{cfg.ScopeRead},
		ResourceName:   "remotemcp notes",
		Tokens: remotemcp.TokenOptions{
			Issuer: cfg.Issuer, JWKSURL: cfg.JWKSURL, Audience: cfg.Audience, AuthorizationServer: cfg.AuthorizationServer,
			IntrospectionURL: cfg.IntrospectionURL, ClientID: cfg.IntrospectClientID, ClientSecret: cfg.IntrospectSecret,
		},
		ClockSkew:          cfg.clockSkew(),
		RedisURL:           cfg.RedisURL,
		RedisMode:          cfg.RedisMode,
		Dev:                cfg.dev,
		AllowedOrigins:     cfg.AllowedOrigins,
		MaxBodyBytes:       cfg.MaxBodyBytes,
		MaxBatchMessages:   cfg.MaxBatchMessages,
		MaxResponseBytes:   cfg.MaxResponseBytes,
		SessionTTL:         cfg.SessionTTL,
		MaxSessionsPerUser: cfg.MaxSessionsPerUser,
		ResumeWindow:       cfg.ResumeWindow,
		MaxSessionLogBytes: cfg.LogMaxBytes,
		ShutdownTimeout:    cfg.ShutdownTimeout,
		SignIn: remotemcp.SignIn{Allow: cfg.SignIn.Allow, GroupsClaim: cfg.SignIn.GroupsClaim, Contact: cfg.SignIn.Contact,
			// A tool for some GitHub organizations or teams needs them read.
			GitHubMemberships: slices.ContainsFunc(slices.Collect(maps.Values(cfg.SignIn.ToolRules)), func(r toolRule) bool { return len(r.Groups) > 0 })},
		Logger: log,
	}
	if cfg.metrics != nil {
		o.Metrics = cfg.metrics
	}
	if cfg.loopback() { // DNS rebinding: also behind a reverse proxy
		o.AllowedHosts = []string{"localhost", "127.0.0.1", "::1", cfg.PublicURL.Hostname()}
	}
	if pc := cfg.Proxy; pc != nil {
		o.Proxy = remotemcp.ProxyOptions{
			Upstream: pc.Upstream, UpstreamIssuer: pc.UpstreamIssuer, ClientID: pc.ClientID, ClientSecret: pc.ClientSecret,
			UpstreamScopes: pc.Scopes, SigningKeys: pc.SigningKeys, VaultKeys: pc.VaultKeys, CookieKey: pc.CookieKey,
			DisableRateLimits: !pc.RateLimits, TrustedProxies: pc.TrustedProxies,
			DisableClientMetadataDocuments: !pc.CIMD, MetadataFetchesPerHost: pc.CIMDFetchesPerHost,
			AccessTokenLifetime: pc.AccessTokenLifetime, RefreshLifetime: pc.RefreshLifetime, RefreshGrace: pc.RefreshGrace,
			MaxClients: pc.MaxClients, UnusedRegistrationLifetime: pc.UnusedRegistrationLifetime,
			Now: cfg.now,
		}
		// The keys made up at parse time are left to the API, which
		// makes up its own and says so.
		if slices.Contains(pc.Ephemeral, "signing key") {
			o.Proxy.SigningKeys = nil
		}
		if slices.Contains(pc.Ephemeral, "vault key") {
			o.Proxy.VaultKeys = nil
		}
		if slices.Contains(pc.Ephemeral, "cookie key") {
			o.Proxy.CookieKey = nil
		}
	}
	return o
}

// noteStore is what the notes tools, resources and prompts keep notes in.
type noteStore interface {
	notes.Store
	notes.ExportStore
}

// register adds the notes product's items to reg: the tools, resources
// and prompts, and the conformance fixtures when enabled. Each item
// declares what it needs as it is registered; what has no rule is never
// served. The notes live where srv keeps its state; bg bounds the
// fixtures' background work.
func register(bg context.Context, cfg *config, reg *policy.Registry, srv *remotemcp.Server, h *handlers) {
	var st noteStore = notesmem.New(&notesmem.Options{Limits: cfg.NoteLimits, MaxBytes: cfg.MaxMemoryStoreBytes})
	if rdb := srv.Redis(); rdb != nil {
		st = notesredis.New(rdb, &notesredis.Options{Limits: cfg.NoteLimits})
	}
	sealer := mcpserver.NewStateSealer(cfg.StateKey, 0)
	deps := tools.Deps{Notes: st, Exports: st, Notifier: srv.Notifier(), Sealer: sealer,
		Scopes: tools.Scopes{Read: cfg.ScopeRead, Write: cfg.ScopeWrite}, Limits: cfg.NoteLimits}
	if cfg.Proxy != nil {
		deps.Upstream = upstreamIdentity{srv}
	}
	tools.Register(reg, deps)
	res := resources.Register(reg, st, st, cfg.ScopeRead)
	prm := prompts.Register(reg, st, cfg.ScopeRead)
	h.add(prm.Complete, res.Subscribe)
	// A listen stream may subscribe to notes; it needs the read scope.
	reg.Method("subscriptions/listen", policy.Need(cfg.ScopeRead))
	if cfg.Fixtures == "conformance" {
		fixtures.Register(bg, reg, sealer, srv.Notifier())
		h.add(fixtures.Complete, fixtures.Subscribe)
	}
}

// upstreamIdentity is whoami's live look-up at the upstream identity
// provider (tools.Upstream), through the server's vault.
type upstreamIdentity struct{ srv *remotemcp.Server }

func (u upstreamIdentity) Identity(ctx context.Context, info *auth.TokenInfo) (*tools.UpstreamIdentity, error) {
	id, err := u.srv.UpstreamIdentity(ctx, info)
	if err != nil {
		return nil, err
	}
	return &tools.UpstreamIdentity{Provider: id.Provider, Subject: id.Subject, Login: id.Login, Name: id.Name, Email: id.Email}, nil
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
