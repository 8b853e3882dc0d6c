package as

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/token"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// UpstreamLogin is the upstream leg of the facade, as the authorization
// server uses it: send the user to the upstream's authorization endpoint
// with our state and PKCE verifier, exchange the code that comes back, and
// read who the user is. *Upstream implements it.
type UpstreamLogin interface {
	AuthCodeURL(state, verifier string) string
	Exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error)
	FetchIdentity(ctx context.Context, tok *oauth2.Token) (*upstream.Identity, error)
}

// TokenVault keeps upstream tokens server-side, per grant, and seals the
// upstream PKCE verifier of a pending sign-in. *upstream.Vault implements
// it.
type TokenVault interface {
	Put(ctx context.Context, grantID string, tok *oauth2.Token) error
	SealVerifier(pendingID, verifier string) (*upstream.Sealed, error)
	OpenVerifier(pendingID string, s *upstream.Sealed) (string, error)
}

// A SignInVault is an optional capability of a TokenVault (found by type
// assertion; *upstream.Vault has it): it keeps the upstream tokens of a
// sign-in only as long as its authorization code may be redeemed
// (PutSignIn), and for the vault's own lifetime once it is (Keep). So an
// abandoned sign-in leaves nothing for long. Without it, the callback uses
// Put.
type SignInVault interface {
	PutSignIn(ctx context.Context, grantID string, tok *oauth2.Token, ttl time.Duration) error
	Keep(ctx context.Context, grantID string) error
}

// Options configures a Server; zero durations mean the documented
// defaults. The fields marked REQUIRED have no default: New refuses
// options without them (nil options included).
type Options struct {
	// Issuer is our issuer identifier: the public base URL, exactly as
	// clients build metadata URLs from it (no trailing slash). REQUIRED.
	Issuer string
	// Resource is the canonical MCP URL: the only resource (RFC 8707) we
	// issue tokens for. REQUIRED.
	Resource string
	// ServiceName is shown on the consent page. Default "remotemcp".
	ServiceName string
	// Scopes are the scopes we offer, with a description each for the
	// consent page, in display order. REQUIRED.
	Scopes []ScopeInfo
	// UpstreamName names the upstream identity provider on the consent
	// page ("GitHub", "Google", ...). REQUIRED.
	UpstreamName string
	// SubjectPrefix goes before the upstream user id to make our sub,
	// e.g. "github:" : stable per upstream user, and never the same for
	// users of two providers.
	SubjectPrefix string

	// Allow says who may sign in, checked at the callback and again at
	// every refresh (see Server.Exchange); nil or empty allows everyone
	// the upstream signs in.
	Allow *upstream.AllowList
	// Contact is whom a refused user should ask for access (an address,
	// a team, a URL), shown on the refusal page. Default: "the
	// administrator of <ServiceName>".
	Contact string

	// Metadata fetches Client ID Metadata Documents; nil turns CIMD off
	// (and metadata then says so).
	Metadata *MetadataFetcher

	// CookieKey signs our cookies and CSRF tokens: 32 random bytes, the
	// same on every replica. REQUIRED.
	CookieKey []byte

	// ClientTTL is how long a registration lives unused once it has
	// received a token; each token request extends it. Default 30 days.
	ClientTTL time.Duration
	// NewClientTTL is how long a registration lives until its first
	// token: anyone may register, so one that is never used must not pin
	// storage for ClientTTL. Default 6 hours (a sign-in takes minutes);
	// never more than ClientTTL.
	NewClientTTL time.Duration
	// CodeTTL is the lifetime of our authorization codes. Default 60s.
	CodeTTL time.Duration
	// PendingTTL bounds the time from /authorize to our callback
	// (consent plus upstream login). Default 10 minutes.
	PendingTTL time.Duration
	// RefreshTTL is the lifetime of a grant and its refresh tokens, from
	// its last use. Default 30 days.
	RefreshTTL time.Duration
	// RefreshGrace is how long the previous refresh token stays valid for
	// a retry by the same client. Default 30s.
	RefreshGrace time.Duration
	// ConsentTTL is how long a remembered approval lasts. Default 90 days.
	ConsentTTL time.Duration
	// StepUpTTL is how long a grant's step-up mark (WantStepUp) waits
	// for the refresh it refuses. Default 1 minute: the clients it is for
	// refresh at once, and a correct client that declined the step-up
	// meets the refusal only if it refreshes within that time. The mark
	// a refusal leaves for the next authorization lives PendingTTL, as
	// long as a sign-in may take to reach us.
	StepUpTTL time.Duration

	// RateLimits limits /register, /authorize, /token, /revoke and
	// /introspect per client address and client id; the zero value (no
	// Limiter) turns it off.
	RateLimits RateLimits

	// Events, if set, is told of registrations, authorizations, token
	// answers, refresh-token reuse, revocations and rate-limit refusals
	// (metrics). It is called on the request path: it must be cheap and
	// safe for concurrent use.
	Events func(Event)

	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

// Stores are the stores of the server's records, all REQUIRED but
// StepUps. One value (memstore.Store, redisstore.Store) usually implements
// them all.
type Stores struct {
	Clients  ClientStore
	Pending  PendingAuthStore
	Codes    CodeStore
	Grants   GrantStore
	Refresh  RefreshStore
	Consents ConsentStore
	// StepUps holds step-up marks (see WantStepUp); nil turns them off:
	// then clients that refresh on 403 insufficient_scope cannot step up.
	StepUps StepUpStore
}

// ScopeInfo is a scope we offer and what it lets a client do.
type ScopeInfo struct {
	Name        string
	Description string
}

// A Server is our OAuth 2.1 authorization server: the facade in front of
// an upstream identity provider. Its Handler serves RFC 8414 metadata,
// /register (RFC 7591), /authorize with the consent page, /callback from
// the upstream, /token, /revoke (RFC 7009), /introspect (RFC 7662) and
// /jwks.
type Server struct {
	o         Options
	st        Stores
	tokens    *token.Issuer
	up        UpstreamLogin
	vault     TokenVault
	offered   []string
	cookieKey []byte
	base      string // the issuer's URL path: "" or "/prefix"
	log       *slog.Logger
}

// Endpoint paths, relative to the issuer.
const (
	PathRegister   = "/register"
	PathAuthorize  = "/authorize"
	PathConsent    = "/authorize/consent"
	PathCallback   = "/callback"
	PathToken      = "/token"
	PathRevoke     = "/revoke"
	PathIntrospect = "/introspect"
	PathJWKS       = "/jwks"
)

// New builds a Server that keeps its records in stores, issues access
// tokens with tokens, signs users in at up and keeps their upstream tokens
// in vault. It panics on a nil dependency (a wiring mistake) and returns an
// error for a bad or missing option.
func New(stores Stores, tokens *token.Issuer, up UpstreamLogin, vault TokenVault, opts *Options) (*Server, error) {
	switch {
	case stores.Clients == nil:
		panic("authz: as.New: nil ClientStore")
	case stores.Pending == nil:
		panic("authz: as.New: nil PendingAuthStore")
	case stores.Codes == nil:
		panic("authz: as.New: nil CodeStore")
	case stores.Grants == nil:
		panic("authz: as.New: nil GrantStore")
	case stores.Refresh == nil:
		panic("authz: as.New: nil RefreshStore")
	case stores.Consents == nil:
		panic("authz: as.New: nil ConsentStore")
	case tokens == nil:
		panic("authz: as.New: nil Issuer")
	case up == nil:
		panic("authz: as.New: nil UpstreamLogin")
	case vault == nil:
		panic("authz: as.New: nil TokenVault")
	}
	if opts == nil {
		opts = &Options{}
	}
	o := *opts
	if o.Issuer == "" || strings.HasSuffix(o.Issuer, "/") {
		return nil, errors.New("authz: the issuer must be set and have no trailing slash")
	}
	iu, err := url.Parse(o.Issuer)
	if err != nil || (iu.Scheme != "https" && iu.Scheme != "http") || iu.Host == "" || iu.RawQuery != "" || iu.Fragment != "" || iu.User != nil {
		return nil, errors.New("authz: the issuer must be an http(s) URL without query, fragment or userinfo")
	}
	if o.Resource == "" {
		return nil, errors.New("authz: the resource must be set")
	}
	if len(o.CookieKey) < 32 {
		return nil, errors.New("authz: the cookie key must be at least 32 bytes")
	}
	if len(o.Scopes) == 0 {
		return nil, errors.New("authz: at least one scope must be offered")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ClientTTL, 30*24*time.Hour)
	def(&o.NewClientTTL, 6*time.Hour)
	o.NewClientTTL = min(o.NewClientTTL, o.ClientTTL)
	def(&o.CodeTTL, time.Minute)
	def(&o.PendingTTL, 10*time.Minute)
	def(&o.RefreshTTL, 30*24*time.Hour)
	def(&o.RefreshGrace, 30*time.Second)
	def(&o.ConsentTTL, 90*24*time.Hour)
	def(&o.StepUpTTL, time.Minute)
	o.RateLimits.setDefaults()
	if o.ServiceName == "" {
		o.ServiceName = "remotemcp"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	s := &Server{o: o, st: stores, tokens: tokens, up: up, vault: vault, cookieKey: slices.Clone(o.CookieKey), base: iu.EscapedPath(), log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, sc := range o.Scopes {
		if !authz.ValidScopeToken(sc.Name) {
			return nil, errors.New("authz: invalid scope name " + strconv.Quote(sc.Name))
		}
		s.offered = append(s.offered, sc.Name)
	}
	return s, nil
}

// Handler serves the authorization server's endpoints at their paths under
// the issuer (the metadata documents too: see MetadataPaths).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, p := range s.MetadataPaths() {
		mux.Handle("GET "+p, http.HandlerFunc(s.serveMetadata))
		mux.Handle("OPTIONS "+p, http.HandlerFunc(s.serveMetadata))
	}
	mux.HandleFunc("POST "+s.base+PathRegister, s.serveRegister)
	mux.HandleFunc("OPTIONS "+s.base+PathRegister, preflight("POST"))
	mux.HandleFunc("GET "+s.base+PathAuthorize, s.serveAuthorize)
	mux.HandleFunc("POST "+s.base+PathConsent, s.serveConsent)
	mux.HandleFunc("GET "+s.base+PathCallback, s.serveCallback)
	mux.HandleFunc("POST "+s.base+PathToken, s.serveToken)
	mux.HandleFunc("OPTIONS "+s.base+PathToken, preflight("POST"))
	mux.HandleFunc("POST "+s.base+PathRevoke, s.serveRevoke)
	mux.HandleFunc("OPTIONS "+s.base+PathRevoke, preflight("POST"))
	mux.HandleFunc("POST "+s.base+PathIntrospect, s.serveIntrospect)
	mux.Handle("GET "+s.base+PathJWKS, cors(token.JWKSHandler(s.tokens.Ring(), s.o.Now)))
	return mux
}

// Paths lists every URL path Handler serves (the issuer's path, if any,
// included), for mounting it on a shared mux.
func (s *Server) Paths() []string {
	out := s.MetadataPaths()
	for _, p := range []string{PathRegister, PathAuthorize, PathConsent, PathCallback, PathToken, PathRevoke, PathIntrospect, PathJWKS} {
		out = append(out, s.base+p)
	}
	return out
}

// CallbackURL is the redirect URI to register with the upstream provider.
func (s *Server) CallbackURL() string { return s.o.Issuer + PathCallback }

// cors lets browser-based MCP clients call the endpoints they call with
// fetch: metadata, registration, token, revocation and the JWKS. Nothing
// here uses cookies, so any origin may.
func cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		h.ServeHTTP(w, r)
	})
}

func preflight(methods string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", methods+", OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	}
}

// newID returns a random identifier of n bytes, base64url.
func (s *Server) newID(n int) (string, error) {
	return randomToken(s.o.Rand, n)
}

// mac is the HMAC-SHA256 of the parts under the cookie key, each part
// length-prefixed so that no two part lists collide.
func (s *Server) mac(purpose string, parts ...string) string {
	m := hmac.New(sha256.New, s.cookieKey)
	for _, p := range append([]string{purpose}, parts...) {
		m.Write([]byte(strconv.Itoa(len(p))))
		m.Write([]byte{':'})
		m.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) macOK(got, purpose string, parts ...string) bool {
	want := s.mac(purpose, parts...)
	return hmac.Equal([]byte(got), []byte(want))
}

// resourceOK reports whether a requested resource names our MCP endpoint,
// give or take a trailing slash: exact in what we issue,
// tolerant in what we accept.
func (s *Server) resourceOK(r string) bool {
	return authz.SameResource(r, s.o.Resource)
}

// narrowScopes keeps the requested scopes that we offer. No scope asked
// means every scope we offer. It fails with invalid_scope when scopes were
// asked for and none of them is ours.
func (s *Server) narrowScopes(requested string) ([]string, error) {
	req := authz.ParseScope(requested)
	if len(req) == 0 {
		return slices.Clone(s.offered), nil
	}
	var out []string
	for _, sc := range s.offered { // offered order, for stable output
		if slices.Contains(req, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, authz.ErrInvalidScope("none of the requested scopes is offered; this server offers: " + strings.Join(s.offered, " "))
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// logErr logs an internal failure with what the client was doing; err is
// never a token or secret (stores and the upstream client do not put them
// in errors).
func (s *Server) logErr(r *http.Request, what string, err error) {
	s.log.LogAttrs(r.Context(), slog.LevelError, "authz: "+what, slog.String("path", r.URL.Path), slog.Any("err", err))
}
