package remotemcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
)

// proxy is AuthProxy put together: our authorization server, the upstream
// it signs users in with, the vault, and the verifier of our own tokens.
type proxy struct {
	server   *as.Server
	issuer   *token.Issuer
	vault    *upstream.Vault
	upstream *upstream.Provider
	devIdP   *devidp.Provider // the built-in development provider, if used
	wait     *idpWait         // the upstream's discovery, while it cannot be reached
	base     string
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
	as.StepUpStore
}

// devIdPPath is where the development identity provider is mounted.
const devIdPPath = "/dev-idp"

// newProxy builds the authorization-server facade of s: its stores (in
// Redis when rdb is set), the upstream provider, the vault, the token
// issuer and the authorization server. cl gets what closes them. ctx
// bounds the first discovery of the upstream, bg the retries of one that
// could not be reached (see idpWait).
func newProxy(ctx, bg context.Context, s *settings, rdb redis.UniversalClient, cl *closers) (*proxy, error) {
	pc := &s.Proxy
	log := s.Logger
	st := newProxyStores(rdb, pc.MaxClients, log)
	cl.add(st.close)
	p := &proxy{base: s.public.String()}
	display, prefix, err := p.connectUpstream(ctx, bg, s, rdb)
	if err != nil {
		return nil, err
	}
	if p.wait != nil {
		cl.add(p.wait.close)
	}
	s.SignIn.configureUpstream(p.upstream)
	if err := madeUpKeys(pc, log); err != nil {
		return nil, err
	}
	vopts := &upstream.VaultOptions{Logger: log.With("component", "vault"), Allow: s.SignIn.Allow,
		Refreshed: s.metrics.upstreamRefreshed()}
	if rdb != nil {
		// Upstream refreshes of one grant run on one replica at a time.
		vopts.Locker = authzredis.NewLocker(rdb, nil)
	}
	p.vault = upstream.NewVault(st.stores, st.stores, pc.VaultKeys, p.upstream, vopts)
	p.issuer, err = token.NewIssuer(pc.SigningKeys, &token.IssuerOptions{
		Issuer: p.base, Audience: s.endpoint(), AccessTokenLifetime: pc.AccessTokenLifetime,
		ClockSkew:   s.ClockSkew,
		Revoked:     token.NewRevocationCheck[*as.Grant](st.stores, 30*time.Second).Revoked,
		CacheLookup: s.metrics.cacheLookup(),
	})
	if err != nil {
		return nil, err
	}
	if p.server, err = p.newServer(s, st, display, prefix); err != nil {
		return nil, err
	}
	return p, nil
}

// madeUpKeys makes up, for this process, the keys pc leaves unset, and
// says so loudly: tokens and upstream sign-ins then end with the process,
// and replicas would not share them.
func madeUpKeys(pc *ProxyOptions, log *slog.Logger) error {
	var made []string
	if pc.SigningKeys == nil {
		k, err := token.GenerateKey()
		if err != nil {
			return err
		}
		if pc.SigningKeys, err = token.NewKeyRing(k); err != nil {
			return err
		}
		made = append(made, "signing key")
	}
	if pc.VaultKeys == nil {
		k := make([]byte, 32)
		rand.Read(k)
		keys, err := upstream.ParseEncryptionKeys("ephemeral:" + hex.EncodeToString(k))
		if err != nil {
			return err
		}
		pc.VaultKeys = keys
		made = append(made, "vault key")
	}
	if pc.CookieKey == nil {
		pc.CookieKey = make([]byte, 32)
		rand.Read(pc.CookieKey)
		made = append(made, "cookie key")
	}
	if len(made) > 0 {
		log.Warn("no "+strings.Join(made, ", ")+" configured: made up for this process; tokens and upstream sign-ins end with it, and replicas would not share them",
			"see", "README: Running as the authorization server")
	}
	return nil
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
func (p *proxy) connectUpstream(ctx, bg context.Context, s *settings, rdb redis.UniversalClient) (display, prefix string, err error) {
	pc, log := &s.Proxy, s.Logger
	ucfg := upstream.Config{ClientID: pc.ClientID, ClientSecret: pc.ClientSecret, Scopes: pc.UpstreamScopes, RedirectURL: p.base + as.PathCallback}
	// configured is a discovered provider with the sign-in settings, which
	// one discovered in the background (see discoverUpstream) needs too.
	configured := func(u *upstream.Provider, err error) (*upstream.Provider, error) {
		if err == nil {
			s.SignIn.configureUpstream(u)
		}
		return u, err
	}
	switch pc.Upstream {
	case "dev":
		if err := p.startDevIdP(ucfg, pc.CookieKey, rdb, log); err != nil {
			return "", "", err
		}
		return "the development identity provider", "", nil // its subjects are "dev|<name>" already
	case "oidc":
		p.upstream, p.wait, err = discoverUpstream(ctx, bg, log, s.idpRetry, pc.UpstreamIssuer, func(ctx context.Context) (*upstream.Provider, error) {
			return configured(upstream.DiscoverOIDC(ctx, pc.UpstreamIssuer, ucfg))
		})
		display, prefix = hostOf(pc.UpstreamIssuer), "oidc:"
	case "github":
		p.upstream, display, prefix = upstream.GitHub(ucfg), "GitHub", "github:"
	case "google":
		p.upstream, p.wait, err = discoverUpstream(ctx, bg, log, s.idpRetry, "https://accounts.google.com", func(ctx context.Context) (*upstream.Provider, error) {
			return configured(upstream.Google(ctx, ucfg))
		})
		display, prefix = "Google", "google:"
	default:
		return "", "", fmt.Errorf("upstream %q: unknown (supported: dev, oidc, github, google)", pc.Upstream)
	}
	if err != nil {
		return "", "", fmt.Errorf("upstream %s: %w", pc.Upstream, err)
	}
	return display, prefix, nil
}

// startDevIdP makes the built-in development identity provider, with a
// client registered for us, and sets p.upstream to it. Its records go to
// Redis when rdb is set, so that replicas share its sign-ins.
func (p *proxy) startDevIdP(ucfg upstream.Config, cookieKey []byte, rdb redis.UniversalClient, log *slog.Logger) error {
	ucfg.ClientID, ucfg.ClientSecret = "remotemcp-dev", devIdPSecret(cookieKey)
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
	log.Warn("using the built-in DEVELOPMENT identity provider: anyone who can reach this loopback listener can sign in as anyone; configure a real upstream (--upstream) for real use", "issuer", iss)
	return nil
}

// newServer makes the authorization server itself, on p's issuer,
// upstream and vault.
func (p *proxy) newServer(s *settings, st *proxyStores, display, prefix string) (*as.Server, error) {
	pc := &s.Proxy
	log := s.Logger
	var limits as.RateLimits
	if !pc.DisableRateLimits {
		limits.Limiter = st.limiter
	}
	if len(pc.TrustedProxies) > 0 {
		limits.ClientAddress = as.ForwardedFor(pc.TrustedProxies...)
	}
	var fetcher *as.MetadataFetcher
	if !pc.DisableClientMetadataDocuments {
		fetcher = as.NewMetadataFetcher(&as.MetadataFetcherOptions{AllowLoopbackHTTP: s.Dev, Shared: st.shared,
			MaxFetchesPerHost: pc.MetadataFetchesPerHost, Logger: log.With("component", "cimd"),
			Events: s.metrics.asEvents()})
	}
	scopes := make([]as.ScopeInfo, len(s.Scopes))
	for i, sc := range s.Scopes {
		scopes[i] = as.ScopeInfo{Name: sc.Name, Description: sc.Description}
	}
	ss := st.stores
	return as.New(as.Stores{Clients: ss, Pending: ss, Codes: ss, Grants: ss, Refresh: ss, Consents: ss, StepUps: ss},
		p.issuer, p.upstream, p.vault, &as.Options{
			Issuer:        p.base,
			Resource:      s.endpoint(),
			Scopes:        scopes,
			UpstreamName:  display,
			SubjectPrefix: prefix,
			Metadata:      fetcher,
			CookieKey:     pc.CookieKey,
			RateLimits:    limits,
			RefreshTTL:    pc.RefreshLifetime,
			NewClientTTL:  pc.UnusedRegistrationLifetime,
			RefreshGrace:  pc.RefreshGrace,
			Allow:         s.SignIn.Allow,
			Contact:       s.SignIn.Contact,
			Now:           pc.Now,
			Logger:        log.With("component", "authz"),
			Events:        s.metrics.asEvents(),
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

// An UpstreamIdentity is who the caller is at the upstream identity
// provider (AuthProxy), asked live with the upstream token kept for the
// caller's grant.
type UpstreamIdentity struct {
	// Provider is the upstream: dev, oidc, github or google.
	Provider string
	// Subject is the user's stable id there; Login, Name and Email what
	// the provider says of them, when it does.
	Subject, Login, Name, Email string
}

// UpstreamIdentity asks the upstream identity provider who the caller of a
// tool is (info is the tool request's Extra.TokenInfo), with the upstream
// token the server keeps for the caller's grant; the token itself never
// leaves the server. Its errors are sentences for the caller: the sign-in
// ended, the provider does not answer. Only with AuthProxy.
func (s *Server) UpstreamIdentity(ctx context.Context, info *auth.TokenInfo) (*UpstreamIdentity, error) {
	if s.proxy == nil {
		return nil, errors.New("this server signs nobody in upstream")
	}
	var gid string
	if info != nil {
		gid, _ = info.Extra["gid"].(string)
	}
	if gid == "" {
		return nil, errors.New("this token has no upstream sign-in")
	}
	id, err := s.proxy.vault.Identity(ctx, gid)
	switch {
	case errors.Is(err, upstream.ErrReauthorize):
		return nil, errors.New("your sign-in with the identity provider ended; connect again to sign in")
	case errors.Is(err, upstream.ErrUnavailable):
		return nil, errors.New("the identity provider is not answering; try again shortly")
	case err != nil:
		return nil, errors.New("the identity provider could not be asked")
	}
	return &UpstreamIdentity{Provider: s.proxy.upstream.Name, Subject: id.Subject, Login: id.Login, Name: id.Name, Email: id.Email}, nil
}

// wantStepUp tells the authorization server that /mcp refused a token of
// one of its grants for missing scopes, so that a client which refreshes
// instead of authorizing again is sent to authorize (as.Server.WantStepUp).
func (p *proxy) wantStepUp(r *http.Request, info *auth.TokenInfo, need []string) {
	if gid, _ := info.Extra["gid"].(string); gid != "" {
		p.server.WantStepUp(r.Context(), gid, need)
	}
}

func hostOf(u string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}
