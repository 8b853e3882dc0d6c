package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/authz/as"
	authzmem "github.com/remotemcp/remotemcp/authz/memstore"
	authzredis "github.com/remotemcp/remotemcp/authz/redisstore"
	"github.com/remotemcp/remotemcp/authz/token"
	"github.com/remotemcp/remotemcp/authz/upstream"
	"github.com/remotemcp/remotemcp/cmd/remotemcp/devidp"
	"github.com/remotemcp/remotemcp/tools"
)

// proxy is --auth proxy put together: our authorization server, the
// upstream it signs users in with, the vault, and the verifier of our
// own tokens for /mcp.
type proxy struct {
	server   *as.Server
	issuer   *token.Issuer
	vault    *upstream.Vault
	upstream *upstream.Provider
	devIdP   *devidp.Provider // the built-in development provider, if used
	wait     *idpWait         // the upstream's discovery, while it cannot be reached
	base     string
	close    func()
}

// authzStores is every store the authorization server needs; memstore
// and redisstore each provide all of them in one value.
type authzStores interface {
	as.ClientStore
	as.PendingAuthStore
	as.CodeStore
	as.GrantStore
	as.RefreshStore
	upstream.TokenStore
	as.ConsentStore
}

// devIdPPath is where the development identity provider is mounted.
const devIdPPath = "/dev-idp"

// newProxy builds the authorization-server facade of cfg: its stores
// (in Redis when rdb is set), the upstream provider, the vault, the token
// issuer and the authorization server.
func newProxy(ctx context.Context, cfg *config, log *slog.Logger, rdb redis.UniversalClient) (*proxy, error) {
	pc := cfg.Proxy
	st := newProxyStores(rdb, pc.MaxClients, log)
	p := &proxy{base: cfg.PublicURL.String(), close: st.close}
	display, prefix, err := p.connectUpstream(ctx, cfg, rdb, log)
	if err != nil {
		return nil, err
	}
	if len(pc.Ephemeral) > 0 {
		log.Warn("no "+strings.Join(pc.Ephemeral, ", ")+" configured: made up for this process; tokens and upstream sign-ins end with it, and replicas would not share them",
			"see", "README: Running as the authorization server")
	}
	vopts := &upstream.VaultOptions{Logger: log.With("component", "vault")}
	if rdb != nil {
		// Upstream refreshes of one grant run on one replica at a time.
		vopts.Locker = authzredis.NewLocker(rdb, nil)
	}
	p.vault = upstream.NewVault(st.stores, st.stores, pc.VaultKeys, p.upstream, vopts)
	p.issuer, err = token.NewIssuer(pc.SigningKeys, &token.IssuerOptions{
		Issuer: p.base, Audience: cfg.endpoint(), AccessTokenLifetime: pc.AccessTokenLifetime,
		ClockSkew: cfg.clockSkew(),
		Revoked:   token.NewRevocationCheck[*as.Grant](st.stores, 30*time.Second).Revoked,
	})
	if err != nil {
		return nil, err
	}
	if p.server, err = p.newServer(cfg, log, st, display, prefix); err != nil {
		return nil, err
	}
	return p, nil
}

// proxyStores are the authorization server's stores and rate limiter: in
// process, or in Redis.
type proxyStores struct {
	stores  authzStores
	limiter as.RateLimiter
	// shared caches client metadata documents across replicas (nil in
	// process).
	shared as.MetadataCache
	close  func()
}

func newProxyStores(rdb redis.UniversalClient, maxClients int, log *slog.Logger) *proxyStores {
	if rdb == nil {
		return &proxyStores{stores: authzmem.New(&authzmem.Options{MaxClients: maxClients}), limiter: authzmem.NewRateLimiter(nil), close: func() {}}
	}
	rs := authzredis.New(rdb, &authzredis.Options{MaxClients: maxClients, Logger: log.With("component", "authzstore")})
	return &proxyStores{stores: rs, limiter: authzredis.NewRateLimiter(rdb, nil), shared: rs, close: func() { rs.Close() }}
}

// connectUpstream sets p.upstream to the identity provider of
// pc.Upstream (starting the development provider for dev), and returns
// the name the consent page shows for it and the prefix of its subjects.
func (p *proxy) connectUpstream(ctx context.Context, cfg *config, rdb redis.UniversalClient, log *slog.Logger) (display, prefix string, err error) {
	pc := cfg.Proxy
	ucfg := upstream.Config{ClientID: pc.ClientID, ClientSecret: pc.ClientSecret, Scopes: pc.Scopes, RedirectURL: p.base + as.PathCallback}
	switch pc.Upstream {
	case "dev":
		if err := p.startDevIdP(ucfg, cfg.StateKey, rdb, log); err != nil {
			return "", "", err
		}
		return "the development identity provider", "", nil // its subjects are "dev|<name>" already
	case "oidc":
		p.upstream, p.wait, err = discoverUpstream(ctx, log, cfg.idpRetry, pc.UpstreamIssuer, func(ctx context.Context) (*upstream.Provider, error) {
			return upstream.DiscoverOIDC(ctx, pc.UpstreamIssuer, ucfg)
		})
		display, prefix = hostOf(pc.UpstreamIssuer), "oidc:"
	case "github":
		p.upstream, display, prefix = upstream.GitHub(ucfg), "GitHub", "github:"
	case "google":
		p.upstream, p.wait, err = discoverUpstream(ctx, log, cfg.idpRetry, "https://accounts.google.com", func(ctx context.Context) (*upstream.Provider, error) {
			return upstream.Google(ctx, ucfg)
		})
		display, prefix = "Google", "google:"
	}
	if err != nil {
		return "", "", fmt.Errorf("upstream %s: %w", pc.Upstream, err)
	}
	return display, prefix, nil
}

// startDevIdP makes the built-in development identity provider, with a
// client registered for us, and sets p.upstream to it. Its records go to
// Redis when rdb is set, so that replicas share its sign-ins.
func (p *proxy) startDevIdP(ucfg upstream.Config, stateKey []byte, rdb redis.UniversalClient, log *slog.Logger) error {
	ucfg.ClientID, ucfg.ClientSecret = "remotemcp-dev", devIdPSecret(stateKey)
	iss := p.base + devIdPPath
	opts := devidp.Options{
		Issuer: iss, ClientID: ucfg.ClientID, ClientSecret: ucfg.ClientSecret,
		RedirectURIs: []string{ucfg.RedirectURL}, Logger: log.With("component", "dev-idp"),
	}
	if rdb != nil {
		opts.Store = devIdPStore{rdb}
	}
	var err error
	p.devIdP, err = devidp.New(opts)
	if err != nil {
		return err
	}
	// Endpoints from the provider, not its discovery document: the server
	// cannot ask itself before it serves.
	e := p.devIdP.Endpoints()
	p.upstream = upstream.NewOIDC("dev", iss, upstream.OIDCEndpoints{
		AuthorizationEndpoint: e.Authorization, TokenEndpoint: e.Token, UserInfoEndpoint: e.UserInfo,
	}, ucfg)
	log.Warn("using the built-in DEVELOPMENT identity provider: anyone who can reach this loopback listener can sign in as anyone; configure --upstream for real use", "issuer", iss)
	return nil
}

// newServer makes the authorization server itself, on p's issuer,
// upstream and vault.
func (p *proxy) newServer(cfg *config, log *slog.Logger, st *proxyStores, display, prefix string) (*as.Server, error) {
	pc := cfg.Proxy
	var limits as.RateLimits
	if pc.RateLimits {
		limits.Limiter = st.limiter
	}
	if len(pc.TrustedProxies) > 0 {
		limits.ClientAddress = as.ForwardedFor(pc.TrustedProxies...)
	}
	var fetcher *as.MetadataFetcher
	if pc.CIMD {
		fetcher = as.NewMetadataFetcher(&as.MetadataFetcherOptions{AllowLoopbackHTTP: cfg.dev, Shared: st.shared,
			MaxFetchesPerHost: pc.CIMDFetchesPerHost, Logger: log.With("component", "cimd")})
	}
	s := st.stores
	return as.New(as.Stores{Clients: s, Pending: s, Codes: s, Grants: s, Refresh: s, Consents: s},
		p.issuer, p.upstream, p.vault, &as.Options{
			Issuer:   p.base,
			Resource: cfg.endpoint(),
			Scopes: []as.ScopeInfo{
				{Name: cfg.ScopeRead, Description: "Read your notes, search them and export them"},
				{Name: cfg.ScopeWrite, Description: "Create and delete your notes"},
			},
			UpstreamName:  display,
			SubjectPrefix: prefix,
			Metadata:      fetcher,
			CookieKey:     pc.CookieKey,
			RateLimits:    limits,
			RefreshTTL:    pc.RefreshLifetime,
			NewClientTTL:  pc.UnusedRegistrationLifetime,
			RefreshGrace:  pc.RefreshGrace,
			Now:           cfg.now,
			Logger:        log.With("component", "authz"),
		})
}

// mount puts the authorization server (and the development provider) on mux.
func (p *proxy) mount(mux *http.ServeMux) {
	h := p.server.Handler()
	for _, path := range p.server.Paths() {
		mux.Handle(path, h)
	}
	if p.devIdP != nil {
		mux.Handle(devIdPPath+"/", p.devIdP.Handler())
	}
}

// Identity implements tools.Upstream: whoami's live look-up at the
// upstream, with the token kept for the caller's grant.
func (p *proxy) Identity(ctx context.Context, info *auth.TokenInfo) (*tools.UpstreamIdentity, error) {
	gid, _ := info.Extra["gid"].(string)
	if gid == "" {
		return nil, errors.New("this token has no upstream sign-in")
	}
	id, err := p.vault.Identity(ctx, gid)
	switch {
	case errors.Is(err, upstream.ErrReauthorize):
		return nil, errors.New("your sign-in with the identity provider ended; connect again to sign in")
	case errors.Is(err, upstream.ErrUnavailable):
		return nil, errors.New("the identity provider is not answering; try again shortly")
	case err != nil:
		return nil, errors.New("the identity provider could not be asked")
	}
	return &tools.UpstreamIdentity{Provider: p.upstream.Name, Subject: id.Subject, Login: id.Login, Name: id.Name, Email: id.Email}, nil
}

func hostOf(u string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}
