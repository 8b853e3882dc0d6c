package devidp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Options configures a [Provider]. Issuer, ClientID, ClientSecret and
// RedirectURIs are required; every other zero field means its documented
// default.
type Options struct {
	// Issuer is the provider's issuer URL, e.g.
	// "http://127.0.0.1:8080/dev-idp". REQUIRED. It must be an http or
	// https URL whose host is localhost or a loopback IP address (127.0.0.0/8,
	// ::1), with no query, fragment or userinfo. The discovery document
	// names it byte for byte, and every endpoint lives under its path.
	Issuer string

	// ClientID and ClientSecret are the one confidential client's
	// credentials. REQUIRED.
	ClientID, ClientSecret string

	// RedirectURIs are the client's redirect URIs, matched exactly (no
	// loopback-port exception). REQUIRED: at least one.
	RedirectURIs []string

	// Users are usernames suggested on the login page; the first one fills
	// the username field. Any valid username can sign in, listed or not.
	// Default: "alice", "bob".
	Users []string

	// AccessTokenLifetime is how long an access token is valid. Default:
	// one hour.
	AccessTokenLifetime time.Duration

	// RefreshTokenLifetime is how long a refresh token is valid. Each
	// refresh rotates it and starts a new lifetime. Default: 24 hours.
	RefreshTokenLifetime time.Duration

	// Now is the clock. Default: time.Now.
	Now func() time.Time

	// Logger receives sign-ins, token issuance and refusals; codes and
	// tokens appear only as a short SHA-256 prefix. Default: discard.
	Logger *slog.Logger

	// Store keeps the pending logins, codes and tokens, each with a TTL
	// (at most the longest lifetime above). Default: process memory, at
	// most 30 000 records. Providers of several processes that share one
	// Store (and the client's credentials) serve one provider together.
	Store Store
}

// Default lifetimes, and the fixed ones.
const (
	defaultAccessTokenLifetime  = time.Hour
	defaultRefreshTokenLifetime = 24 * time.Hour
	// codeLifetime is the lifetime of an authorization code (RFC 6749
	// §4.1.2 recommends at most ten minutes).
	codeLifetime = 60 * time.Second
	// loginLifetime is how long a login page stays usable.
	loginLifetime = 10 * time.Minute
)

// maxBody caps every request body: all are small forms.
const maxBody = 16 << 10

// A Provider is the development identity provider. Build one with [New] and
// serve [Provider.Handler].
type Provider struct {
	issuer       string // exactly Options.Issuer
	base         string // Issuer without a trailing slash: endpoint URLs
	path         string // the issuer's path without a trailing slash ("" for the root)
	clientID     string
	clientSecret string
	redirectURIs []string
	users        []string
	accessTTL    time.Duration
	refreshTTL   time.Duration
	now          func() time.Time
	log          *slog.Logger
	store        *records
}

// New returns a Provider configured by opts. It fails if opts.Issuer is not
// a loopback URL, or if the client is not fully configured.
func New(opts Options) (*Provider, error) {
	path, err := checkIssuer(opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("devidp: issuer %q: %w", opts.Issuer, err)
	}
	if opts.ClientID == "" || opts.ClientSecret == "" {
		return nil, errors.New("devidp: ClientID and ClientSecret are required")
	}
	if len(opts.RedirectURIs) == 0 {
		return nil, errors.New("devidp: at least one redirect URI is required")
	}
	for _, ru := range opts.RedirectURIs {
		if u, err := url.Parse(ru); err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.Contains(ru, "#") {
			return nil, fmt.Errorf("devidp: redirect URI %q: must be an absolute URL without a fragment", ru)
		}
	}
	users := opts.Users
	if len(users) == 0 {
		users = []string{"alice", "bob"}
	}
	for _, u := range users {
		if !validUsername(u) {
			return nil, fmt.Errorf("devidp: suggested user %q: %s", u, usernameRule)
		}
	}
	p := &Provider{
		issuer:       opts.Issuer,
		base:         strings.TrimSuffix(opts.Issuer, "/"),
		path:         path,
		clientID:     opts.ClientID,
		clientSecret: opts.ClientSecret,
		redirectURIs: append([]string(nil), opts.RedirectURIs...),
		users:        append([]string(nil), users...),
		accessTTL:    opts.AccessTokenLifetime,
		refreshTTL:   opts.RefreshTokenLifetime,
		now:          opts.Now,
		log:          opts.Logger,
	}
	if p.accessTTL <= 0 {
		p.accessTTL = defaultAccessTokenLifetime
	}
	if p.refreshTTL <= 0 {
		p.refreshTTL = defaultRefreshTokenLifetime
	}
	if p.now == nil {
		p.now = time.Now
	}
	st := opts.Store
	if st == nil {
		st = newMemStore(p.now)
	}
	p.store = &records{s: st, revokedTTL: max(p.accessTTL, p.refreshTTL)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Handler returns the provider's HTTP handler. It expects full request
// paths, under the issuer's path; mount it at that path plus "/", without
// http.StripPrefix. For the issuer "http://127.0.0.1:8080/dev-idp":
//
//	mux.Handle("/dev-idp/", p.Handler())
//
// serves
//
//	GET      /dev-idp/.well-known/openid-configuration  discovery
//	GET      /dev-idp/authorize                         the login page
//	POST     /dev-idp/authorize                         the login form
//	POST     /dev-idp/token                             the token endpoint
//	GET,POST /dev-idp/userinfo                          the userinfo endpoint
//
// Every request whose Host is not a loopback host is refused with 403.
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p.path+"/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET "+p.path+"/authorize", p.authorizePage)
	mux.HandleFunc("POST "+p.path+"/authorize", p.authorizeForm)
	mux.HandleFunc("POST "+p.path+"/token", p.token)
	mux.HandleFunc("GET "+p.path+"/userinfo", p.userinfo)
	mux.HandleFunc("POST "+p.path+"/userinfo", p.userinfo)
	return loopbackOnly(mux)
}

// loopbackOnly refuses requests addressed to a host that is not loopback,
// so that a page in the developer's browser cannot reach the provider
// through a DNS name rebound to 127.0.0.1.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !loopbackHost(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")) {
			http.Error(w, "devidp: the development identity provider serves loopback hosts only", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkIssuer checks that issuer is an http(s) URL on a loopback host with
// a plain path, and returns that path without a trailing slash.
func checkIssuer(issuer string) (string, error) {
	if issuer == "" {
		return "", errors.New("is required")
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return "", err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("must be an http or https URL")
	case u.User != nil, u.RawQuery != "", u.ForceQuery, u.Fragment != "", strings.Contains(issuer, "#"):
		return "", errors.New("must not have userinfo, a query or a fragment")
	case !loopbackHost(u.Hostname()):
		return "", errors.New("the development identity provider refuses to run on a host that is not loopback (localhost, 127.0.0.0/8, ::1)")
	}
	path := strings.TrimSuffix(u.Path, "/")
	if u.RawPath != "" || !validPath(path) {
		return "", errors.New("path must be made of non-empty segments of letters, digits and -._~")
	}
	return path, nil
}

// loopbackHost reports whether host (without port or brackets) is
// localhost or a loopback IP address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// validPath reports whether path is empty or "/seg/seg…" with segments of
// RFC 3986 unreserved characters, other than "." and "..": such a path is
// safe in a ServeMux pattern and needs no escaping.
func validPath(path string) bool {
	if path == "" {
		return true
	}
	if path[0] != '/' {
		return false
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if !unreserved(seg[i]) {
				return false
			}
		}
	}
	return true
}

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '.' || c == '_' || c == '~'
}

// newSecret returns 32 bytes from crypto/rand, base64url-encoded: a code,
// a token or a login request id.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails, and always fills b
	return base64.RawURLEncoding.EncodeToString(b)
}

// logID is what may be logged of a secret: a short prefix of its SHA-256.
func logID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:4])
}
