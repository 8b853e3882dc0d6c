package remotemcp

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/remotemcp/remotemcp/authz/token"
	"github.com/remotemcp/remotemcp/authz/upstream"
	"github.com/remotemcp/remotemcp/mcpserver"
)

// Auth is how the endpoint authenticates its callers.
type Auth string

const (
	// AuthNone serves every caller as one anonymous user, with every
	// scope. New refuses it unless Options.Dev is set: it is for a server
	// that only this machine can reach.
	AuthNone Auth = "none"
	// AuthJWT accepts JWT access tokens of another authorization server
	// (Options.Tokens.Issuer), verified with its JWK Set.
	AuthJWT Auth = "jwt"
	// AuthIntrospect accepts opaque tokens of another authorization
	// server, asked about each one (RFC 7662, Options.Tokens).
	AuthIntrospect Auth = "introspect"
	// AuthProxy makes the server its own authorization server (a facade in
	// front of an upstream identity provider, Options.Proxy): clients
	// register, users sign in upstream and consent, and the server issues
	// and verifies its own tokens.
	AuthProxy Auth = "proxy"
)

// A Scope is an OAuth scope the server's items need, with the sentence the
// consent page shows for it (AuthProxy).
type Scope struct {
	Name        string
	Description string
}

// Options configures a Server. Zero fields mean the documented defaults;
// PublicURL is the one setting without a default.
type Options struct {
	// PublicURL is the canonical base URL clients use, such as
	// "https://mcp.example.com": the endpoint is PublicURL + "/mcp", the
	// resource of its tokens. Plain http only on loopback. REQUIRED.
	PublicURL string
	// Auth is how callers are authenticated. Default AuthNone.
	Auth Auth
	// Scopes are the scopes the server's items need. With AuthProxy the
	// authorization server grants only these, and its consent page shows
	// their descriptions.
	Scopes []Scope
	// RequiredScopes are what every request needs (the scope= of a 401
	// challenge), and the scopes the protected-resource metadata advertises
	// (scopes_supported): clients ask for them first, and for more when an
	// item needs it (a 403 insufficient_scope step-up). Default: none.
	RequiredScopes []string
	// ResourceName is the resource_name of the protected-resource
	// metadata, for people. Default: none.
	ResourceName string
	// Tokens configures AuthJWT and AuthIntrospect.
	Tokens TokenOptions
	// Proxy configures AuthProxy.
	Proxy ProxyOptions
	// ClockSkew is tolerated on token exp, nbf and iat. Zero means 30s; a
	// negative value means none.
	ClockSkew time.Duration

	// RedisURL, if set, puts every store in Redis so that replicas share
	// all state (sessions, stream logs, the authorization server's
	// records, rate limits, notifications):
	//
	//	single    redis://[user:password@]host:port[/db][?options] or rediss://…
	//	sentinel  redis://[user:password@]sentinel1:26379?master_name=mymaster&addr=sentinel2:26379
	//	cluster   redis://[user:password@]node1:6379?addr=node2:6379&addr=node3:6379
	//
	// Default: stores in process memory, for one replica.
	RedisURL string
	// RedisMode says how RedisURL is read: "single" (the default),
	// "sentinel" or "cluster".
	RedisMode string

	// Dev turns on what is only safe when nobody but this machine can
	// reach the server (its listener and PublicURL both on loopback):
	// AuthNone, the development upstream (Proxy.Upstream "dev"), browser
	// origins on loopback, and http client metadata documents on loopback.
	Dev bool
	// AllowedOrigins lists the browser origins ("https://app.example.com")
	// allowed to call the endpoint; requests without Origin pass.
	AllowedOrigins []string
	// AllowedHosts, if set, lists the host names the Host header may
	// carry. Set it (to the loopback names and PublicURL's host) when the
	// listener is on loopback, against DNS rebinding. Default: none, but
	// with Dev localhost, 127.0.0.1, ::1 and PublicURL's host.
	AllowedHosts []string
	// MaxBodyBytes bounds a request body (413 beyond). Default 4 MiB.
	MaxBodyBytes int64
	// MaxBatchMessages bounds a 2025-03-26 JSON-RPC batch. Default 100.
	MaxBatchMessages int
	// MaxResponseBytes bounds what one legacy request answers. Default 16 MiB.
	MaxResponseBytes int
	// SessionTTL is the idle lifetime of a legacy session. Default 30m.
	SessionTTL time.Duration
	// MaxSessionsPerUser bounds the live legacy sessions of one subject.
	// Default 100.
	MaxSessionsPerUser int
	// ResumeWindow is how long a legacy session's completed request stream
	// is kept for a client to resume it. Default 2m.
	ResumeWindow time.Duration
	// MaxSessionLogBytes bounds the stream log one legacy session keeps
	// within ResumeWindow. Default 4 MiB.
	MaxSessionLogBytes int64

	// SignIn says who may use the server (an allow-list) and where the
	// user's groups are. The zero value admits everyone.
	SignIn SignIn

	// ShutdownTimeout bounds the graceful drain of Serve: ordinary
	// requests get half of it, then streams are ended. Default 15s.
	ShutdownTimeout time.Duration
	// Logger receives the access log (one line per request, never its
	// query or headers), refusals and errors. Nil discards.
	Logger *slog.Logger
	// Metrics, if set, is where New registers the server's Prometheus
	// collectors (the families of the README's "Observability:
	// metrics"); serve it with promhttp, on a listener of its own. Nil
	// means no metrics. New fails if the families are registered there
	// already: one Server per Registerer.
	Metrics prometheus.Registerer
}

// TokenOptions configures how the tokens of another authorization server
// are checked (AuthJWT, AuthIntrospect).
type TokenOptions struct {
	// Issuer is the authorization server's issuer identifier, matched byte
	// for byte with a token's iss. REQUIRED.
	Issuer string
	// JWKSURL is the issuer's JWK Set (AuthJWT). Default: jwks_uri of the
	// issuer's metadata (RFC 8414, then OpenID Connect discovery).
	JWKSURL string
	// Audience is what tokens must be issued for. Default: the endpoint,
	// PublicURL + "/mcp".
	Audience string
	// AuthorizationServer is the issuer the protected-resource metadata
	// sends clients to. Default Issuer.
	AuthorizationServer string
	// IntrospectionURL is the RFC 7662 endpoint (AuthIntrospect), with the
	// credentials of the client that may call it. REQUIRED for
	// AuthIntrospect.
	IntrospectionURL       string
	ClientID, ClientSecret string
}

// ProxyOptions configures AuthProxy: the server as the authorization
// server of its clients, signing users in with an upstream identity
// provider whose tokens it keeps, encrypted, for the tools.
type ProxyOptions struct {
	// Upstream is the identity provider: "dev" (built in, with Dev only;
	// the default), "oidc" (any OpenID provider at UpstreamIssuer),
	// "github" or "google". With RedisURL the development provider keeps
	// its records (each with a TTL, at most 24h) in Redis, so that
	// replicas share its sign-ins.
	Upstream string
	// UpstreamIssuer is the OpenID provider's issuer URL ("oidc").
	UpstreamIssuer string
	// ClientID and ClientSecret are the server's client registered at the
	// upstream, whose redirect URI is PublicURL + "/callback". REQUIRED
	// but for "dev".
	ClientID, ClientSecret string
	// UpstreamScopes are asked of the upstream. Default: openid profile
	// email for OpenID providers and Google, read:user user:email for
	// GitHub.
	UpstreamScopes []string

	// SigningKeys sign our access tokens; every replica needs the same.
	// Default: a key made up for this process (logged as a warning).
	SigningKeys *token.KeyRing
	// VaultKeys encrypt the upstream tokens. Default: made up (warning).
	VaultKeys *upstream.EncryptionKeys
	// CookieKey (≥32 bytes) signs consent cookies and CSRF tokens.
	// Default: made up (warning).
	CookieKey []byte

	// DisableRateLimits turns off the per-address and per-client limits
	// of the OAuth endpoints (on by default).
	DisableRateLimits bool
	// TrustedProxies are the load balancers whose X-Forwarded-For names
	// the client address for rate limits. Default: none.
	TrustedProxies []netip.Prefix
	// DisableClientMetadataDocuments refuses https client ids whose
	// metadata document would be fetched (CIMD, on by default).
	DisableClientMetadataDocuments bool
	// MetadataFetchesPerHost bounds the metadata-document fetches in
	// flight to one host. Default 4.
	MetadataFetchesPerHost int

	// AccessTokenLifetime is how long our access tokens live. Default 10m.
	AccessTokenLifetime time.Duration
	// RefreshLifetime is how long a grant lives since its last use.
	// Default 30 days.
	RefreshLifetime time.Duration
	// RefreshGrace is how long a rotated refresh token stays valid for a
	// retry. Default 30s.
	RefreshGrace time.Duration
	// MaxClients bounds the registered clients. Default 20000.
	MaxClients int
	// UnusedRegistrationLifetime is how long a registration lives until
	// its first token. Default 6h.
	UnusedRegistrationLifetime time.Duration
	// Now is the authorization server's clock. Default time.Now.
	Now func() time.Time
}

// settings are Options checked, with the public URL parsed.
type settings struct {
	Options
	public  *url.URL
	metrics *metrics // nil: off
	// idpRetry waits between the tries of an identity provider that could
	// not be reached at start-up (nil: time.After); tests set it to drive
	// the retries.
	idpRetry func(time.Duration) <-chan time.Time
}

// endpoint is the canonical MCP URL.
func (s *settings) endpoint() string { return s.public.String() + "/mcp" }

// audience is what tokens of another server must be issued for.
func (s *settings) audience() string {
	if s.Tokens.Audience != "" {
		return s.Tokens.Audience
	}
	return s.endpoint()
}

// check validates opts and fills in the defaults that New itself needs.
func check(opts *Options) (*settings, error) {
	s := &settings{}
	if opts != nil {
		s.Options = *opts
	}
	u, err := url.Parse(s.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("remotemcp: PublicURL %q: want an absolute http(s) URL without query or fragment, e.g. https://mcp.example.com", s.PublicURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if u.Scheme == "http" && !mcpserver.IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("remotemcp: PublicURL %q: plain http is only allowed on loopback; use https", s.PublicURL)
	}
	s.public = u
	if s.Dev && !mcpserver.IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("remotemcp: Dev is only for a server on loopback, and PublicURL %q is not", s.PublicURL)
	}
	if s.Auth == "" {
		s.Auth = AuthNone
	}
	switch s.Auth {
	case AuthNone:
		if !s.Dev {
			return nil, errors.New("remotemcp: AuthNone serves everyone as one anonymous user: it needs Dev (a listener and PublicURL on loopback)")
		}
	case AuthJWT, AuthIntrospect:
		if err := s.checkTokens(); err != nil {
			return nil, err
		}
	case AuthProxy:
		if err := s.checkProxy(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("remotemcp: Auth %q: want none, jwt, introspect or proxy", s.Auth)
	}
	if err := s.SignIn.Check(s.Auth, s.Proxy.Upstream); err != nil {
		return nil, fmt.Errorf("remotemcp: %w", err)
	}
	if s.Dev && len(s.AllowedHosts) == 0 {
		s.AllowedHosts = []string{"localhost", "127.0.0.1", "::1", u.Hostname()}
	}
	if slices.Contains(s.RequiredScopes, "") {
		return nil, errors.New("remotemcp: empty name in RequiredScopes")
	}
	if s.ShutdownTimeout <= 0 {
		s.ShutdownTimeout = 15 * time.Second
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// checkTokens checks the settings of AuthJWT and AuthIntrospect.
func (s *settings) checkTokens() error {
	t := &s.Tokens
	if t.Issuer == "" {
		return fmt.Errorf("remotemcp: Auth %s needs Tokens.Issuer", s.Auth)
	}
	if t.AuthorizationServer == "" {
		t.AuthorizationServer = t.Issuer
	}
	urls := map[string]string{"Tokens.Issuer": t.Issuer, "Tokens.AuthorizationServer": t.AuthorizationServer, "Tokens.JWKSURL": t.JWKSURL}
	if s.Auth == AuthIntrospect {
		if t.IntrospectionURL == "" || t.ClientID == "" || t.ClientSecret == "" {
			return errors.New("remotemcp: AuthIntrospect needs Tokens.IntrospectionURL, ClientID and ClientSecret")
		}
		urls["Tokens.IntrospectionURL"] = t.IntrospectionURL
	}
	for _, name := range slices.Sorted(maps.Keys(urls)) {
		if urls[name] == "" {
			continue
		}
		if err := CheckURL(name, urls[name]); err != nil {
			return fmt.Errorf("remotemcp: %w", err)
		}
	}
	return nil
}

// checkProxy checks the settings of AuthProxy and fills in its defaults.
func (s *settings) checkProxy() error {
	pc := &s.Proxy
	if pc.Upstream == "" {
		pc.Upstream = "dev"
	}
	switch pc.Upstream {
	case "dev":
		if !s.Dev {
			return errors.New("remotemcp: the development upstream lets anyone sign in as anyone: it needs Dev (a listener and PublicURL on loopback)")
		}
	case "oidc", "github", "google":
		if pc.Upstream == "oidc" {
			if pc.UpstreamIssuer == "" {
				return errors.New("remotemcp: Proxy.Upstream oidc needs Proxy.UpstreamIssuer")
			}
			if err := CheckURL("Proxy.UpstreamIssuer", pc.UpstreamIssuer); err != nil {
				return fmt.Errorf("remotemcp: %w", err)
			}
		}
		if pc.ClientID == "" || pc.ClientSecret == "" {
			return fmt.Errorf("remotemcp: Proxy.Upstream %s needs the client registered with it: Proxy.ClientID and ClientSecret", pc.Upstream)
		}
	default:
		return fmt.Errorf("remotemcp: Proxy.Upstream %q: unknown (supported: dev, oidc, github, google)", pc.Upstream)
	}
	if s.RedisURL != "" && (pc.SigningKeys == nil || pc.VaultKeys == nil || pc.CookieKey == nil) {
		return errors.New("remotemcp: RedisURL shares state between replicas, so they must share keys too: set Proxy.SigningKeys, VaultKeys and CookieKey")
	}
	if pc.CookieKey != nil && len(pc.CookieKey) < 32 {
		return errors.New("remotemcp: Proxy.CookieKey: want at least 32 bytes")
	}
	if pc.MaxClients == 0 {
		pc.MaxClients = 20000
	}
	return nil
}
