package main

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

// newProxy builds the authorization-server facade of cfg.
func newProxy(ctx context.Context, cfg *config, log *slog.Logger, rdb redis.UniversalClient) (*proxy, error) {
	pc := cfg.Proxy
	base := cfg.PublicURL.String()
	p := &proxy{base: base, close: func() {}}
	var stores authzStores = authzmem.New(nil)
	var limiter as.RateLimiter = authzmem.NewRateLimiter(nil)
	var sharedMetadata as.MetadataCache
	if rdb != nil {
		rs := authzredis.New(rdb, &authzredis.Options{Logger: log.With("component", "authzstore")})
		stores = rs
		sharedMetadata = rs
		limiter = authzredis.NewRateLimiter(rdb, nil)
		p.close = func() { rs.Close() }
	}
	var limits as.RateLimits
	if pc.RateLimits {
		limits.Limiter = limiter
	}
	if len(pc.TrustedProxies) > 0 {
		limits.ClientAddress = as.ForwardedFor(pc.TrustedProxies...)
	}
	callback := base + as.PathCallback
	ucfg := upstream.Config{ClientID: pc.ClientID, ClientSecret: pc.ClientSecret, Scopes: pc.Scopes, RedirectURL: callback}
	var err error
	var display, prefix string
	switch pc.Upstream {
	case "dev":
		secret := make([]byte, 24)
		rand.Read(secret)
		ucfg.ClientID, ucfg.ClientSecret = "remotemcp-dev", hex.EncodeToString(secret)
		iss := base + devIdPPath
		p.devIdP, err = devidp.New(devidp.Options{
			Issuer: iss, ClientID: ucfg.ClientID, ClientSecret: ucfg.ClientSecret,
			RedirectURIs: []string{callback}, Logger: log.With("component", "dev-idp"),
		})
		if err != nil {
			return nil, err
		}
		// Endpoints as its discovery document names them (a test checks
		// that they agree): the server cannot ask itself before it serves.
		p.upstream = upstream.NewOIDC("dev", iss, upstream.OIDCEndpoints{
			AuthorizationEndpoint: iss + "/authorize", TokenEndpoint: iss + "/token", UserInfoEndpoint: iss + "/userinfo",
		}, ucfg)
		display, prefix = "the development identity provider", "" // its subjects are "dev|<name>" already
		log.Warn("using the built-in DEVELOPMENT identity provider: anyone who can reach this loopback listener can sign in as anyone; configure --upstream for real use", "issuer", iss)
	case "oidc":
		p.upstream, err = upstream.DiscoverOIDC(ctx, pc.UpstreamIssuer, ucfg)
		display, prefix = hostOf(pc.UpstreamIssuer), "oidc:"
	case "github":
		p.upstream, display, prefix = upstream.GitHub(ucfg), "GitHub", "github:"
	case "google":
		p.upstream, err = upstream.Google(ctx, ucfg)
		display, prefix = "Google", "google:"
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", pc.Upstream, err)
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
	p.vault = upstream.NewVault(stores, stores, pc.VaultKeys, p.upstream, vopts)
	p.issuer, err = token.NewIssuer(pc.SigningKeys, &token.IssuerOptions{
		Issuer: base, Audience: cfg.endpoint(), AccessTokenLifetime: pc.AccessTokenLifetime,
		ClockSkew: cfg.clockSkew(),
		Revoked:   token.NewRevocationCheck[*as.Grant](stores, 30*time.Second).Revoked,
	})
	if err != nil {
		return nil, err
	}
	var fetcher *as.MetadataFetcher
	if pc.CIMD {
		fetcher = as.NewMetadataFetcher(&as.MetadataFetcherOptions{AllowLoopbackHTTP: cfg.loopback(), Shared: sharedMetadata, Logger: log.With("component", "cimd")})
	}
	p.server, err = as.New(as.Stores{Clients: stores, Pending: stores, Codes: stores, Grants: stores, Refresh: stores, Consents: stores},
		p.issuer, p.upstream, p.vault, &as.Options{
			Issuer:   base,
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
			RefreshGrace:  pc.RefreshGrace,
			Now:           cfg.now,
			Logger:        log.With("component", "authz"),
		})
	if err != nil {
		return nil, err
	}
	return p, nil
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
