package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/endpoints"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
)

// ErrUnavailable marks a call to the upstream identity provider
// that got no usable answer: a network error, a timeout, a 5xx, a 429, or a
// body that cannot be read. It is retryable; the stored upstream tokens are
// kept. Render it as 503 temporarily_unavailable, never as a reason to
// re-authorize.
var ErrUnavailable = errors.New("authz: upstream unavailable")

// An Identity is who the user is at the upstream identity provider.
type Identity struct {
	// Subject is the stable upstream user id, as a string: OIDC "sub", or
	// GitHub's numeric "id" in decimal. Never the login, which can change.
	Subject string
	// Login is the user name: OIDC "preferred_username", GitHub "login".
	Login string
	// UniqueLogin says Login is unique at the provider and set under its
	// rules (GitHub's logins; the development provider's names), so that
	// an allow-list may name it. An OpenID provider's preferred_username
	// is not (a relying party must not rely on it being unique, OpenID
	// Connect Core §5.1; many let users choose it), so it never counts.
	UniqueLogin bool
	// Name is the display name.
	Name string
	// Email is the address the provider reports; empty when an OIDC
	// provider says email_verified is false.
	Email string
	// EmailVerified says the provider vouches for Email: an OIDC
	// provider's email_verified is true, or GitHub lists the address as
	// verified. Only a verified address counts for an allow-list's
	// EmailDomains or goes into our access tokens.
	EmailVerified bool
	// Groups are the user's groups, sorted: the values of an OIDC
	// provider's GroupsClaim, or with GitHubMemberships the GitHub
	// organizations ("org") and teams ("org/team-slug"). At most
	// MaxGroups, each at most MaxGroupLen bytes.
	Groups []string
	// Raw is the provider's whole answer, for display; numbers are
	// json.Number.
	Raw map[string]any

	// allGroups are the groups before the MaxGroups bound, for
	// AllowList.Check.
	allGroups []string
}

// Config is our registration at the upstream identity provider.
type Config struct {
	// ClientID and ClientSecret are our client credentials upstream. They
	// come from the environment or a file, never a flag.
	ClientID, ClientSecret string
	// Scopes asked upstream; the default depends on the provider
	// ("openid profile email" for OIDC, "read:user user:email" for GitHub).
	Scopes []string
	// RedirectURL is our callback, registered upstream.
	RedirectURL string
	// HTTPClient makes every upstream call (discovery, token endpoint,
	// userinfo, and the API calls of Vault.Client); default a client with
	// a 10s timeout.
	HTTPClient *http.Client
}

// A Provider is the identity provider our users log in at: the OAuth 2.0
// client configuration for the upstream leg, and how to read the user's
// identity. Build one with DiscoverOIDC, GitHub or Google; the exported
// fields may be adjusted before use (tests point the endpoints at a fake).
type Provider struct {
	// Name is "oidc", "github", "google" or "dev".
	Name string
	// Issuer is the OIDC issuer identifier, or "" (GitHub).
	Issuer string
	// OAuth2 is the client configuration: endpoints, credentials, scopes,
	// redirect URL and client authentication style.
	OAuth2 oauth2.Config
	// UserInfoURL answers with the user's identity for an access token.
	UserInfoURL string
	// AuthParams are extra parameters of the authorization URL (Google's
	// access_type=offline and prompt=consent).
	AuthParams url.Values
	// HTTPClient makes every upstream call.
	HTTPClient *http.Client
	// GroupsClaim names the userinfo claim that holds an OIDC user's
	// groups or roles: an array of strings, a string, or an object whose
	// keys are the names. Default "groups".
	GroupsClaim string
	// GitHubMemberships, for GitHub, reads the user's organizations and
	// teams into Identity.Groups (GET /user/orgs and /user/teams, which
	// need the read:org scope): one to four more API calls per sign-in
	// and refresh.
	GitHubMemberships bool

	// accept is the Accept header of the userinfo request.
	accept string
	// parse reads the userinfo answer.
	parse func(map[string]any) (*Identity, error)
}

const (
	// defaultUpstreamTimeout bounds each upstream call when the caller
	// gives no HTTP client.
	defaultUpstreamTimeout = 10 * time.Second
	// maxDiscoveryBytes bounds an OpenID Provider Configuration document.
	maxDiscoveryBytes = 256 << 10
	// maxUserInfoBytes bounds a userinfo answer.
	maxUserInfoBytes = 1 << 20
	// googleIssuer is Google's OIDC issuer identifier.
	googleIssuer = "https://accounts.google.com"
	// githubUserURL is GitHub's "get the authenticated user" API.
	githubUserURL = "https://api.github.com/user"
)

// An Error is a failed call to the upstream identity provider. Its
// message holds only the operation, the HTTP status and the OAuth error
// code: never a token, a code, a secret or the upstream's body (its cause,
// reachable with errors.As, may hold the body; do not render that). It
// matches ErrUnavailable when the failure is transient.
type Error struct {
	// Op is what failed: "discovery", "token exchange", "token refresh"
	// or "userinfo".
	Op string
	// Status is the HTTP status of the answer; 0 when there was none.
	Status int
	// Code is the RFC 6749 §5.2 error code of the answer, if any.
	Code string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	msg := "authz: upstream " + e.Op
	switch {
	case e.Code != "":
		msg += ": " + safeCode(e.Code)
		if e.Status != 0 {
			msg += " (HTTP " + strconv.Itoa(e.Status) + ")"
		}
	case e.Status != 0:
		msg += ": HTTP " + strconv.Itoa(e.Status)
	case errors.Is(e.Err, context.DeadlineExceeded) || isTimeout(e.Err):
		msg += ": timeout"
	case errors.Is(e.Err, context.Canceled):
		msg += ": canceled"
	default:
		msg += ": no usable answer"
	}
	return msg
}

// Unwrap returns the cause, and ErrUnavailable when the failure is
// transient.
func (e *Error) Unwrap() []error {
	if e.transient() {
		return []error{e.Err, ErrUnavailable}
	}
	return []error{e.Err}
}

// transient reports a failure worth retrying: no answer, a 5xx, 408 or
// 429, an RFC 6749 temporarily_unavailable or server_error, or an answer
// that could not be read. A 4xx or an OAuth error code is a refusal.
func (e *Error) transient() bool {
	switch {
	case e.Status >= 500, e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests,
		e.Code == string(authz.TemporarilyUnavailable), e.Code == string(authz.ServerError):
		return true
	case e.Code != "", e.Status >= 400:
		return false
	}
	return true
}

// safeCode keeps an upstream error code printable and short: it is the
// upstream's text, not ours.
func safeCode(c string) string {
	if len(c) > 64 {
		c = c[:64]
	}
	return strings.Map(func(r rune) rune {
		if r >= 0x21 && r <= 0x7e && r != '"' && r != '\\' {
			return r
		}
		return '?'
	}, c)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// tokenError wraps an error of the x/oauth2 token endpoint calls.
func tokenError(op string, err error) error {
	e := &Error{Op: op, Err: err}
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		e.Code = re.ErrorCode
		if re.Response != nil {
			e.Status = re.Response.StatusCode
		}
	}
	return e
}

func (cfg Config) client() *http.Client {
	if cfg.HTTPClient != nil {
		return cfg.HTTPClient
	}
	return &http.Client{Timeout: defaultUpstreamTimeout}
}

// DiscoverOIDC builds an Upstream for an OpenID Connect provider from its
// discovery document, <issuer>/.well-known/openid-configuration
// ([OpenID Connect Discovery 1.0 §4]). The document's issuer must equal
// issuer exactly (mix-up protection, [RFC 8414 §3.3]); every endpoint must
// be https (http only on a loopback host, for development). Client
// authentication is client_secret_basic when the provider supports it,
// else client_secret_post, else detected on first use. The identity comes
// from the userinfo endpoint: "sub" is required.
//
// [OpenID Connect Discovery 1.0 §4]: https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig
// [RFC 8414 §3.3]: https://www.rfc-editor.org/rfc/rfc8414#section-3.3
func DiscoverOIDC(ctx context.Context, issuer string, cfg Config) (*Provider, error) {
	if why := checkUpstreamURL(issuer); why != "" {
		return nil, fmt.Errorf("authz: OIDC issuer %q: %s", issuer, why)
	}
	if u, _ := url.Parse(issuer); u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(issuer, "#") {
		return nil, fmt.Errorf("authz: OIDC issuer %q: has a query or fragment", issuer)
	}
	hc := cfg.client()
	doc, err := fetchDiscovery(ctx, hc, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return nil, fmt.Errorf("authz: discover %s: %w", issuer, err)
	}
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("authz: discover %s: the document names issuer %q: refusing a mix-up", issuer, safeCode(doc.Issuer))
	}
	for name, v := range map[string]string{
		"authorization_endpoint": doc.AuthorizationEndpoint,
		"token_endpoint":         doc.TokenEndpoint,
		"userinfo_endpoint":      doc.UserInfoEndpoint,
	} {
		if v == "" {
			return nil, fmt.Errorf("authz: discover %s: no %s", issuer, name)
		}
		if why := checkUpstreamURL(v); why != "" {
			return nil, fmt.Errorf("authz: discover %s: %s: %s", issuer, name, why)
		}
	}
	style := oauth2.AuthStyleAutoDetect
	switch {
	case slices.Contains(doc.TokenAuthMethods, "client_secret_basic"):
		style = oauth2.AuthStyleInHeader
	case slices.Contains(doc.TokenAuthMethods, "client_secret_post"):
		style = oauth2.AuthStyleInParams
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile", "email"}
	}
	return &Provider{
		Name:   "oidc",
		Issuer: issuer,
		OAuth2: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:   doc.AuthorizationEndpoint,
				TokenURL:  doc.TokenEndpoint,
				AuthStyle: style,
			},
			RedirectURL: cfg.RedirectURL,
			Scopes:      slices.Clone(scopes),
		},
		UserInfoURL: doc.UserInfoEndpoint,
		HTTPClient:  hc,
		accept:      "application/json",
		parse:       parseOIDCIdentity,
	}, nil
}

// discovery is the part of an OpenID Provider Configuration we read.
type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	UserInfoEndpoint      string   `json:"userinfo_endpoint"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
}

// fetchDiscovery reads a discovery document: no redirects, bounded in size
// and time.
func fetchDiscovery(ctx context.Context, hc *http.Client, docURL string) (*discovery, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultUpstreamTimeout)
	defer cancel()
	nc := *hc
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := nc.Do(req)
	if err != nil {
		return nil, &Error{Op: "discovery", Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{Op: "discovery", Status: resp.StatusCode, Err: errors.New(resp.Status)}
	}
	body, err := readBounded(resp.Body, maxDiscoveryBytes)
	if err != nil {
		return nil, &Error{Op: "discovery", Err: err}
	}
	var doc discovery
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("the document is not JSON: %w", err)
	}
	return &doc, nil
}

// readBounded reads at most limit bytes, and fails on more.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("the answer is larger than %d bytes", limit)
	}
	return b, nil
}

// checkUpstreamURL says what is wrong with an upstream endpoint URL: it
// must be absolute https, or http on a loopback host, and hold no
// credentials.
func checkUpstreamURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "":
		return "not an absolute URL"
	case u.User != nil:
		return "holds credentials"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
		return ""
	}
	return "not https"
}

// parseOIDCIdentity reads an OIDC userinfo answer ([OpenID Connect Core
// 1.0 §5.3.2]).
//
// [OpenID Connect Core 1.0 §5.3.2]: https://openid.net/specs/openid-connect-core-1_0.html#UserInfoResponse
func parseOIDCIdentity(m map[string]any) (*Identity, error) {
	sub, _ := m["sub"].(string)
	if sub == "" {
		return nil, errors.New("authz: upstream userinfo has no sub")
	}
	id := &Identity{Subject: sub, Raw: m}
	id.Login, _ = m["preferred_username"].(string)
	id.Name, _ = m["name"].(string)
	verified, ok := m["email_verified"].(bool)
	if !ok || verified {
		id.Email, _ = m["email"].(string)
	}
	id.EmailVerified = verified && id.Email != ""
	return id, nil
}

// GitHub builds an Upstream for GitHub (an OAuth App or a GitHub App's user
// authorization). The identity is GET https://api.github.com/user: its
// numeric "id" becomes Subject. Default scopes "read:user user:email".
func GitHub(cfg Config) *Provider {
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"read:user", "user:email"}
	}
	return &Provider{
		Name: "github",
		OAuth2: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:  endpoints.GitHub.AuthURL,
				TokenURL: endpoints.GitHub.TokenURL,
				// GitHub documents client_id and client_secret as form
				// parameters; saying so saves a probe per exchange.
				AuthStyle: oauth2.AuthStyleInParams,
			},
			RedirectURL: cfg.RedirectURL,
			Scopes:      slices.Clone(scopes),
		},
		UserInfoURL: githubUserURL,
		HTTPClient:  cfg.client(),
		accept:      "application/vnd.github+json",
		parse:       parseGitHubIdentity,
	}
}

// parseGitHubIdentity reads GitHub's "get the authenticated user" answer.
func parseGitHubIdentity(m map[string]any) (*Identity, error) {
	n, ok := m["id"].(json.Number)
	if !ok {
		return nil, errors.New("authz: GitHub user has no numeric id")
	}
	id, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil || id == 0 {
		return nil, errors.New("authz: GitHub user id is not a positive integer")
	}
	out := &Identity{Subject: strconv.FormatUint(id, 10), Raw: m}
	out.Login, _ = m["login"].(string)
	out.UniqueLogin = out.Login != ""
	out.Name, _ = m["name"].(string)
	// The public profile address: GitHub lets a user show only a
	// verified one.
	out.Email, _ = m["email"].(string)
	out.EmailVerified = out.Email != ""
	return out, nil
}

// Google builds an Upstream for Google, discovered from
// https://accounts.google.com. It asks for access_type=offline and
// prompt=consent, without which Google issues no refresh token (or only on
// the first consent).
func Google(ctx context.Context, cfg Config) (*Provider, error) {
	return google(ctx, googleIssuer, cfg)
}

func google(ctx context.Context, issuer string, cfg Config) (*Provider, error) {
	u, err := DiscoverOIDC(ctx, issuer, cfg)
	if err != nil {
		return nil, err
	}
	u.Name = "google"
	u.AuthParams = url.Values{"access_type": {"offline"}, "prompt": {"consent"}}
	return u, nil
}

// AuthCodeURL is the upstream authorization URL for our state, with the
// PKCE S256 challenge of verifier ([RFC 7636 §4.3]) and AuthParams.
//
// [RFC 7636 §4.3]: https://www.rfc-editor.org/rfc/rfc7636#section-4.3
func (u *Provider) AuthCodeURL(state, verifier string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	for _, k := range slices.Sorted(maps.Keys(u.AuthParams)) {
		opts = append(opts, oauth2.SetAuthURLParam(k, u.AuthParams.Get(k)))
	}
	return u.OAuth2.AuthCodeURL(state, opts...)
}

// Exchange trades the upstream's authorization code for its tokens,
// proving PKCE with verifier. Errors are *Error.
func (u *Provider) Exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	tok, err := u.OAuth2.Exchange(u.context(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, tokenError("token exchange", err)
	}
	return tok, nil
}

// refresh redeems a refresh token at the upstream token endpoint. If the
// upstream does not return a new refresh token, the old one is kept.
func (u *Provider) refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	// An empty access token is never valid, so the source refreshes.
	tok, err := u.OAuth2.TokenSource(u.context(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, tokenError("token refresh", err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, nil
}

// context carries HTTPClient to x/oauth2.
func (u *Provider) context(ctx context.Context) context.Context {
	if u.HTTPClient == nil {
		return ctx
	}
	return context.WithValue(ctx, oauth2.HTTPClient, u.HTTPClient)
}

// FetchIdentity asks the upstream who holds tok. The answer is bounded in
// size; a non-200 answer is an *Error. No error holds the token.
func (u *Provider) FetchIdentity(ctx context.Context, tok *oauth2.Token) (*Identity, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("authz: no upstream access token")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.UserInfoURL, nil)
	if err != nil {
		return nil, fmt.Errorf("authz: upstream userinfo URL: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	accept := u.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "remotemcp")
	hc := u.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: defaultUpstreamTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &Error{Op: "userinfo", Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{Op: "userinfo", Status: resp.StatusCode, Err: errors.New(resp.Status)}
	}
	body, err := readBounded(resp.Body, maxUserInfoBytes)
	if err != nil {
		return nil, &Error{Op: "userinfo", Err: err}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, &Error{Op: "userinfo", Err: errors.New("the answer is not a JSON object")}
	}
	parse := u.parse
	if parse == nil {
		parse = parseOIDCIdentity
	}
	id, err := parse(m)
	if err != nil {
		return nil, err
	}
	if u.Name == "github" {
		if err := u.githubDetails(ctx, hc, tok, id); err != nil {
			return nil, err
		}
		return id, nil
	}
	claim := u.GroupsClaim
	if claim == "" {
		claim = "groups"
	}
	id.allGroups = tokencheck.Bound(tokencheck.ClaimNames(m[claim]), 0)
	id.Groups = tokencheck.Bound(id.allGroups, MaxGroups)
	return id, nil
}

// loopbackHost reports a loopback host name or literal.
func loopbackHost(host string) bool {
	return host == "127.0.0.1" || host == "::1" || strings.EqualFold(host, "localhost")
}
