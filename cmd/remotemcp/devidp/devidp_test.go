package devidp_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/remotemcp/remotemcp/cmd/remotemcp/devidp"
)

const (
	testClientID     = "remotemcp-dev"
	testClientSecret = "dev-s3cret-4d1c"
	testRedirect     = "http://127.0.0.1:9/callback"
)

// clock is a settable clock, safe for the server's goroutines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a running provider and a client configured from its discovery
// document, as remotemcp's facade configures one.
type env struct {
	srv    *httptest.Server
	issuer string
	clock  *clock
	cfg    oauth2.Config
	meta   map[string]any
	// http never follows redirects, so that tests see them.
	http *http.Client
	ctx  context.Context
}

// newEnv starts a provider at <server>/dev-idp; edit adjusts its options.
func newEnv(t *testing.T, edit func(*devidp.Options)) *env {
	t.Helper()
	e := &env{clock: &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}}
	e.srv = httptest.NewUnstartedServer(nil)
	e.issuer = "http://" + e.srv.Listener.Addr().String() + "/dev-idp"
	opts := devidp.Options{
		Issuer:       e.issuer,
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		RedirectURIs: []string{testRedirect},
		Now:          e.clock.Now,
	}
	if edit != nil {
		edit(&opts)
	}
	p, err := devidp.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dev-idp/", p.Handler())
	e.srv.Config.Handler = mux
	e.srv.Start()
	t.Cleanup(e.srv.Close)

	e.http = e.srv.Client()
	e.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.ctx = context.WithValue(context.Background(), oauth2.HTTPClient, e.http)

	resp, err := e.http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&e.meta); err != nil {
		t.Fatal(err)
	}
	e.cfg = oauth2.Config{
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   e.meta["authorization_endpoint"].(string),
			TokenURL:  e.meta["token_endpoint"].(string),
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: testRedirect,
		Scopes:      []string{"openid", "profile", "email"},
	}
	return e
}

var requestIDRE = regexp.MustCompile(`name="request_id" value="([^"]+)"`)

// loginPage opens the authorization URL and returns the login request id.
func (e *env) loginPage(t *testing.T, authURL string) string {
	t.Helper()
	resp, body := e.get(t, authURL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET authorize: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	for _, want := range []string{"Development sign-in", "no real identity provider", `name="username"`, `value="alice"`, `name="email"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	m := requestIDRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no request_id in the login page:\n%s", body)
	}
	return m[1]
}

// submit posts the login form and returns the response and its body.
func (e *env) submit(t *testing.T, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := e.http.PostForm(e.issuer+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *env) get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := e.http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login runs the browser's part of the flow as username and returns the
// query of the redirect back to the client.
func (e *env) login(t *testing.T, verifier, username, email string) url.Values {
	t.Helper()
	id := e.loginPage(t, e.cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	resp, body := e.submit(t, url.Values{"request_id": {id}, "username": {username}, "email": {email}, "action": {"allow"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST authorize: %d\n%s", resp.StatusCode, body)
	}
	return e.redirectQuery(t, resp)
}

// redirectQuery checks that resp redirects to the client and returns the
// query it carries.
func (e *env) redirectQuery(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Fatalf("redirected to %q, want %q", got, testRedirect)
	}
	q := loc.Query()
	if q.Get("iss") != e.issuer {
		t.Errorf("iss = %q, want %q", q.Get("iss"), e.issuer)
	}
	return q
}

// userinfo calls the userinfo endpoint with accessToken.
func (e *env) userinfo(t *testing.T, accessToken string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.meta["userinfo_endpoint"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header.Get("WWW-Authenticate")
}

// oauthCode is the OAuth error code of an x/oauth2 error.
func oauthCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestNewIssuer(t *testing.T) {
	for _, tt := range []struct {
		issuer string
		ok     bool
	}{
		{"http://127.0.0.1:8080/dev-idp", true},
		{"http://127.0.0.1:8080/dev-idp/", true},
		{"https://127.8.9.10/dev-idp", true},
		{"http://localhost:1234/a/b-c", true},
		{"http://LOCALHOST/", true},
		{"http://[::1]:8080/dev-idp", true},
		{"http://127.0.0.1:8080", true},
		{"", false},
		{"http://example.com/dev-idp", false},
		{"https://login.example.com/", false},
		{"http://10.0.0.1:8080/dev-idp", false},
		{"http://192.168.1.2/dev-idp", false},
		{"http://0.0.0.0:8080/dev-idp", false},
		{"http://[::]:8080/dev-idp", false},
		{"http://[fe80::1%25eth0]:8080/dev-idp", false},
		{"http://localhost.example.com/dev-idp", false},
		{"http://127.0.0.1.nip.io/dev-idp", false},
		{"ftp://127.0.0.1/dev-idp", false},
		{"127.0.0.1:8080/dev-idp", false},
		{"http://user@127.0.0.1/dev-idp", false},
		{"http://127.0.0.1/dev-idp?x=1", false},
		{"http://127.0.0.1/dev-idp#f", false},
		{"http://127.0.0.1/a//b", false},
		{"http://127.0.0.1/a/../b", false},
		{"http://127.0.0.1/%7Bx%7D", false},
		{"http://127.0.0.1/{x}", false},
	} {
		t.Run(tt.issuer, func(t *testing.T) {
			_, err := devidp.New(devidp.Options{Issuer: tt.issuer, ClientID: "c", ClientSecret: "s", RedirectURIs: []string{testRedirect}})
			if (err == nil) != tt.ok {
				t.Errorf("New(%q) error = %v, want ok = %v", tt.issuer, err, tt.ok)
			}
		})
	}
}

func TestNewOptions(t *testing.T) {
	base := devidp.Options{Issuer: "http://127.0.0.1:8080/dev-idp", ClientID: "c", ClientSecret: "s", RedirectURIs: []string{testRedirect}}
	for _, tt := range []struct {
		name string
		edit func(*devidp.Options)
	}{
		{"no client id", func(o *devidp.Options) { o.ClientID = "" }},
		{"no client secret", func(o *devidp.Options) { o.ClientSecret = "" }},
		{"no redirect uri", func(o *devidp.Options) { o.RedirectURIs = nil }},
		{"relative redirect uri", func(o *devidp.Options) { o.RedirectURIs = []string{"/callback"} }},
		{"redirect uri with fragment", func(o *devidp.Options) { o.RedirectURIs = []string{testRedirect + "#x"} }},
		{"invalid suggested user", func(o *devidp.Options) { o.Users = []string{"a b"} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.edit(&o)
			if _, err := devidp.New(o); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
	if _, err := devidp.New(base); err != nil {
		t.Errorf("New(valid options): %v", err)
	}
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, nil)
	want := map[string]any{
		"issuer":                                         e.issuer,
		"authorization_endpoint":                         e.issuer + "/authorize",
		"token_endpoint":                                 e.issuer + "/token",
		"userinfo_endpoint":                              e.issuer + "/userinfo",
		"response_types_supported":                       []any{"code"},
		"response_modes_supported":                       []any{"query"},
		"grant_types_supported":                          []any{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":               []any{"S256"},
		"token_endpoint_auth_methods_supported":          []any{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                               []any{"openid", "profile", "email", "offline_access"},
		"subject_types_supported":                        []any{"public"},
		"claims_supported":                               []any{"sub", "preferred_username", "name", "email"},
		"authorization_response_iss_parameter_supported": true,
	}
	if diff := cmp.Diff(want, e.meta); diff != "" {
		t.Errorf("discovery document (-want +got):\n%s", diff)
	}
}

// TestFlow runs the whole flow as remotemcp's facade does: x/oauth2 with
// endpoints from discovery, PKCE S256, the login form, the code exchange,
// userinfo, and a refresh.
func TestFlow(t *testing.T) {
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams, oauth2.AuthStyleAutoDetect} {
		t.Run(map[oauth2.AuthStyle]string{oauth2.AuthStyleInHeader: "basic", oauth2.AuthStyleInParams: "post", oauth2.AuthStyleAutoDetect: "detect"}[style], func(t *testing.T) {
			e := newEnv(t, func(o *devidp.Options) { o.AccessTokenLifetime = 5 * time.Minute })
			e.cfg.Endpoint.AuthStyle = style
			verifier := oauth2.GenerateVerifier()
			q := e.login(t, verifier, "alice", "alice@example.test")
			if q.Get("state") != "st4te" || q.Get("code") == "" {
				t.Fatalf("redirect query = %v, want state st4te and a code", q)
			}
			tok, err := e.cfg.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.ExpiresIn != 300 {
				t.Errorf("token = type %q, refresh set %t, expires_in %d; want Bearer, true, 300", tok.TokenType, tok.RefreshToken != "", tok.ExpiresIn)
			}
			if got := tok.Extra("scope"); got != "openid profile email" {
				t.Errorf("scope = %v, want %q", got, "openid profile email")
			}

			status, info, _ := e.userinfo(t, tok.AccessToken)
			want := map[string]any{"sub": "dev|alice", "preferred_username": "alice", "name": "alice", "email": "alice@example.test"}
			if diff := cmp.Diff(want, info); status != http.StatusOK || diff != "" {
				t.Errorf("userinfo: status %d, claims (-want +got):\n%s", status, diff)
			}

			// The access token expires; x/oauth2 refreshes it.
			e.clock.Advance(6 * time.Minute)
			if status, _, challenge := e.userinfo(t, tok.AccessToken); status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
				t.Errorf("userinfo with an expired token: %d %q, want 401 invalid_token", status, challenge)
			}
			tok.Expiry = time.Now().Add(-time.Minute) // x/oauth2 reads the real clock
			tok2, err := e.cfg.TokenSource(e.ctx, tok).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken || tok2.RefreshToken == "" {
				t.Errorf("refresh did not rotate both tokens")
			}
			if status, info, _ := e.userinfo(t, tok2.AccessToken); status != http.StatusOK || info["sub"] != "dev|alice" {
				t.Errorf("userinfo after refresh: %d %v", status, info)
			}

			// Reusing the rotated-out refresh token revokes the grant.
			_, err = e.cfg.TokenSource(e.ctx, tok).Token()
			if oauthCode(err) != "invalid_grant" {
				t.Errorf("refresh token reuse: %v, want invalid_grant", err)
			}
			if status, _, _ := e.userinfo(t, tok2.AccessToken); status != http.StatusUnauthorized {
				t.Errorf("userinfo after refresh token reuse: %d, want 401 (grant revoked)", status)
			}
			tok2.Expiry = time.Now().Add(-time.Minute)
			if _, err := e.cfg.TokenSource(e.ctx, tok2).Token(); oauthCode(err) != "invalid_grant" {
				t.Errorf("refresh with a revoked grant: %v, want invalid_grant", err)
			}
		})
	}
}

func TestCodeReplay(t *testing.T) {
	e := newEnv(t, nil)
	verifier := oauth2.GenerateVerifier()
	code := e.login(t, verifier, "bob", "").Get("code")
	tok, err := e.cfg.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if _, err := e.cfg.Exchange(e.ctx, code, oauth2.VerifierOption(verifier)); oauthCode(err) != "invalid_grant" {
		t.Fatalf("second Exchange: %v, want invalid_grant", err)
	}
	// RFC 6749 §4.1.2: tokens issued from a replayed code are revoked.
	if status, _, _ := e.userinfo(t, tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo after code replay: %d, want 401", status)
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	if _, err := e.cfg.TokenSource(e.ctx, tok).Token(); oauthCode(err) != "invalid_grant" {
		t.Errorf("refresh after code replay: %v, want invalid_grant", err)
	}
}

func TestCodeExpires(t *testing.T) {
	e := newEnv(t, nil)
	verifier := oauth2.GenerateVerifier()
	code := e.login(t, verifier, "bob", "").Get("code")
	e.clock.Advance(61 * time.Second)
	if _, err := e.cfg.Exchange(e.ctx, code, oauth2.VerifierOption(verifier)); oauthCode(err) != "invalid_grant" {
		t.Errorf("Exchange of an expired code: %v, want invalid_grant", err)
	}
}

func TestExchangeRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(cfg *oauth2.Config, verifier *string)
		want string
	}{
		{"PKCE mismatch", func(_ *oauth2.Config, v *string) { *v = oauth2.GenerateVerifier() }, "invalid_grant"},
		{"short verifier", func(_ *oauth2.Config, v *string) { *v = "too-short" }, "invalid_grant"},
		{"other redirect_uri", func(c *oauth2.Config, _ *string) { c.RedirectURL = "http://127.0.0.1:9/other" }, "invalid_grant"},
		{"bad client secret (basic)", func(c *oauth2.Config, _ *string) { c.ClientSecret = "wrong" }, "invalid_client"},
		{"bad client secret (post)", func(c *oauth2.Config, _ *string) {
			c.ClientSecret = "wrong"
			c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		}, "invalid_client"},
		{"other client", func(c *oauth2.Config, _ *string) { c.ClientID = "intruder" }, "invalid_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			verifier := oauth2.GenerateVerifier()
			code := e.login(t, verifier, "alice", "").Get("code")
			cfg, v := e.cfg, verifier
			tt.edit(&cfg, &v)
			if _, err := cfg.Exchange(e.ctx, code, oauth2.VerifierOption(v)); oauthCode(err) != tt.want {
				t.Fatalf("Exchange: %v, want %s", err, tt.want)
			}
			// A refused attempt does not burn the code.
			if _, err := e.cfg.Exchange(e.ctx, code, oauth2.VerifierOption(verifier)); err != nil {
				t.Errorf("Exchange after a refused attempt: %v", err)
			}
		})
	}
}

// postToken posts a raw token request.
func (e *env) postToken(t *testing.T, form url.Values, basic bool) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(testClientID), url.QueryEscape(testClientSecret))
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp, m
}

func TestTokenEndpointErrors(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name   string
		form   url.Values
		basic  bool
		status int
		code   string
	}{
		{"no client authentication", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, false, 401, "invalid_client"},
		{"two authentication methods", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_secret": {testClientSecret}}, true, 400, "invalid_request"},
		{"repeated parameter", url.Values{"grant_type": {"refresh_token", "refresh_token"}, "refresh_token": {"x"}}, true, 400, "invalid_request"},
		{"unsupported grant type", url.Values{"grant_type": {"password"}}, true, 400, "unsupported_grant_type"},
		{"missing grant type", url.Values{}, true, 400, "invalid_request"},
		{"missing code_verifier", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {testRedirect}}, true, 400, "invalid_request"},
		{"unknown code", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {testRedirect}, "code_verifier": {oauth2.GenerateVerifier()}}, true, 400, "invalid_grant"},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, true, 400, "invalid_grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.postToken(t, tt.form, tt.basic)
			if resp.StatusCode != tt.status || body["error"] != tt.code {
				t.Errorf("got %d %v, want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if tt.code == "invalid_client" && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("invalid_client without a Basic challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestRefreshScope(t *testing.T) {
	e := newEnv(t, nil)
	verifier := oauth2.GenerateVerifier()
	code := e.login(t, verifier, "alice", "a@example.test").Get("code")
	tok, err := e.cfg.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	// Widening is refused and leaves the refresh token valid.
	resp, body := e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid offline_access"}}, true)
	if resp.StatusCode != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("widening refresh: %d %v, want 400 invalid_scope", resp.StatusCode, body)
	}
	// Narrowing to openid drops the profile and email claims.
	resp, body = e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid"}}, true)
	if resp.StatusCode != 200 || body["scope"] != "openid" {
		t.Fatalf("narrowing refresh: %d %v", resp.StatusCode, body)
	}
	_, info, _ := e.userinfo(t, body["access_token"].(string))
	if diff := cmp.Diff(map[string]any{"sub": "dev|alice"}, info); diff != "" {
		t.Errorf("userinfo with scope openid (-want +got):\n%s", diff)
	}
	// The new refresh token still carries the whole grant.
	resp, body = e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}}, true)
	if resp.StatusCode != 200 || body["scope"] != "openid profile email" {
		t.Errorf("refresh without scope: %d %v, want the whole grant", resp.StatusCode, body)
	}
}

func TestAuthorizeErrorPage(t *testing.T) {
	e := newEnv(t, nil)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	good := url.Values{"client_id": {testClientID}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for _, tt := range []struct {
		name string
		edit func(url.Values)
		want string
	}{
		{"unregistered redirect_uri", func(q url.Values) { q.Set("redirect_uri", "http://evil.example/cb") }, "Invalid redirect_uri"},
		{"redirect_uri prefix", func(q url.Values) { q.Set("redirect_uri", testRedirect+"/x") }, "Invalid redirect_uri"},
		{"redirect_uri with another port", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:10/callback") }, "Invalid redirect_uri"},
		{"missing redirect_uri", func(q url.Values) { q.Del("redirect_uri") }, "Invalid redirect_uri"},
		{"repeated redirect_uri", func(q url.Values) { q.Add("redirect_uri", testRedirect) }, "Invalid redirect_uri"},
		{"unknown client", func(q url.Values) { q.Set("client_id", "intruder") }, "Unknown client"},
		{"missing client", func(q url.Values) { q.Del("client_id") }, "Unknown client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range good {
				q[k] = append([]string(nil), v...)
			}
			tt.edit(q)
			resp, body := e.get(t, e.issuer+"/authorize?"+q.Encode())
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("got %d, Location %q; want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(body, tt.want) || !strings.Contains(body, `role="alert"`) || strings.Contains(body, "request_id") {
				t.Errorf("error page lacks %q or shows a form:\n%s", tt.want, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func TestAuthorizeErrorRedirect(t *testing.T) {
	e := newEnv(t, nil)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	for _, tt := range []struct {
		name      string
		edit      func(url.Values)
		code      string
		wantState string
	}{
		{"missing PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request", "s"},
		{"missing code_challenge_method", func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request", "s"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request", "s"},
		{"missing code_challenge", func(q url.Values) { q.Del("code_challenge") }, "invalid_request", "s"},
		{"malformed code_challenge", func(q url.Values) { q.Set("code_challenge", "abc") }, "invalid_request", "s"},
		{"response_type token", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type", "s"},
		{"missing response_type", func(q url.Values) { q.Del("response_type") }, "invalid_request", "s"},
		{"missing state", func(q url.Values) { q.Del("state") }, "invalid_request", ""},
		{"repeated state", func(q url.Values) { q.Add("state", "t") }, "invalid_request", ""},
		{"repeated code_challenge", func(q url.Values) { q.Add("code_challenge", challenge) }, "invalid_request", "s"},
		{"unknown scope", func(q url.Values) { q.Set("scope", "openid admin") }, "invalid_scope", "s"},
		{"response_mode fragment", func(q url.Values) { q.Set("response_mode", "fragment") }, "invalid_request", "s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"client_id": {testClientID}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			tt.edit(q)
			resp, body := e.get(t, e.issuer+"/authorize?"+q.Encode())
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("got %d, want 303\n%s", resp.StatusCode, body)
			}
			got := e.redirectQuery(t, resp)
			if got.Get("error") != tt.code || got.Get("state") != tt.wantState || got.Has("code") {
				t.Errorf("redirect query = %v, want error %s and state %q", got, tt.code, tt.wantState)
			}
		})
	}
}

func TestLoginForm(t *testing.T) {
	e := newEnv(t, func(o *devidp.Options) { o.Users = []string{"carol", "dave"} })
	authURL := e.cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))

	resp, body := e.get(t, authURL)
	if !strings.Contains(body, `value="carol"`) || !strings.Contains(body, `<option value="dave">`) {
		t.Errorf("login page does not suggest the configured users:\n%s", body)
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	id := requestIDRE.FindStringSubmatch(body)[1]

	for _, tt := range []struct {
		name, username, email, want string
	}{
		{"empty username", "", "", "The username must be"},
		{"username with a space", "a b", "", "The username must be"},
		{"username too long", strings.Repeat("a", 65), "", "The username must be"},
		{"username with markup", "<b>x</b>", "", "&lt;b&gt;x&lt;/b&gt;"},
		{"email with a name", "alice", "Alice <a@example.test>", "The email must be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.submit(t, url.Values{"request_id": {id}, "username": {tt.username}, "email": {tt.email}, "action": {"allow"}})
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tt.want) || !strings.Contains(body, `aria-invalid="true"`) {
				t.Errorf("got %d, want 400 with %q:\n%s", resp.StatusCode, tt.want, body)
			}
			if !strings.Contains(body, `value="`+id+`"`) {
				t.Error("the form shown again lost its request_id")
			}
		})
	}

	// The same login request still works, once.
	resp, body = e.submit(t, url.Values{"request_id": {id}, "username": {"carol.k+dev@x_y-z"}, "action": {"allow"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("valid login: %d\n%s", resp.StatusCode, body)
	}
	if q := e.redirectQuery(t, resp); q.Get("code") == "" || q.Get("state") != "st4te" {
		t.Errorf("redirect query = %v", q)
	}
	resp, body = e.submit(t, url.Values{"request_id": {id}, "username": {"carol"}, "action": {"allow"}})
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "unknown or has expired") {
		t.Errorf("second use of a login request: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	// A forged or missing request id is refused on the page.
	for _, forged := range []string{"", "forged"} {
		resp, _ = e.submit(t, url.Values{"request_id": {forged}, "username": {"carol"}, "action": {"allow"}})
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("request_id %q: %d, want 400 without a redirect", forged, resp.StatusCode)
		}
	}
}

func TestLoginDenied(t *testing.T) {
	e := newEnv(t, nil)
	id := e.loginPage(t, e.cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	resp, body := e.submit(t, url.Values{"request_id": {id}, "action": {"deny"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deny: %d\n%s", resp.StatusCode, body)
	}
	if q := e.redirectQuery(t, resp); q.Get("error") != "access_denied" || q.Get("state") != "st4te" || q.Has("code") {
		t.Errorf("redirect query = %v, want access_denied", q)
	}
}

func TestLoginExpires(t *testing.T) {
	e := newEnv(t, nil)
	id := e.loginPage(t, e.cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	e.clock.Advance(11 * time.Minute)
	resp, _ := e.submit(t, url.Values{"request_id": {id}, "username": {"alice"}, "action": {"allow"}})
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("expired login request: %d, want 400 without a redirect", resp.StatusCode)
	}
}

func TestUserinfoErrors(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name, auth, challenge string
	}{
		{"no token", "", `Bearer realm="dev-idp"`},
		{"basic scheme", "Basic eDp5", `Bearer realm="dev-idp"`},
		{"unknown token", "Bearer nope", `Bearer realm="dev-idp", error="invalid_token"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), tt.challenge) {
				t.Errorf("got %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tt.challenge)
			}
		})
	}
	// A refresh token is not an access token.
	verifier := oauth2.GenerateVerifier()
	tok, err := e.cfg.Exchange(e.ctx, e.login(t, verifier, "alice", "").Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := e.userinfo(t, tok.RefreshToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo with a refresh token: %d, want 401", status)
	}
}

func TestLoopbackHostOnly(t *testing.T) {
	e := newEnv(t, nil)
	for host, want := range map[string]int{
		"evil.example":          http.StatusForbidden,
		"evil.example:80":       http.StatusForbidden,
		"127.0.0.1.nip.io:8080": http.StatusForbidden,
		"localhost:8080":        http.StatusOK,
		"[::1]:8080":            http.StatusOK,
		"127.0.0.1":             http.StatusOK,
	} {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/.well-known/openid-configuration", nil)
		req.Host = host
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// FuzzAuthorize checks that no authorization request, however malformed,
// redirects anywhere but the registered redirect URI, or fails with a 5xx.
func FuzzAuthorize(f *testing.F) {
	challenge := oauth2.S256ChallengeFromVerifier("0123456789012345678901234567890123456789abc")
	f.Add("client_id=remotemcp-dev&redirect_uri=" + url.QueryEscape(testRedirect) + "&response_type=code&state=s&code_challenge=" + challenge + "&code_challenge_method=S256")
	f.Add("client_id=remotemcp-dev&redirect_uri=" + url.QueryEscape(testRedirect) + "&redirect_uri=http://evil.example/")
	f.Add("client_id=remotemcp-dev&redirect_uri=" + url.QueryEscape(testRedirect) + "&scope=openid%20%22x&state=%00")
	f.Add("%zz&client_id")
	p, err := devidp.New(devidp.Options{Issuer: "http://127.0.0.1:8080/dev-idp", ClientID: testClientID, ClientSecret: testClientSecret, RedirectURIs: []string{testRedirect}})
	if err != nil {
		f.Fatal(err)
	}
	h := p.Handler()
	f.Fuzz(func(t *testing.T, query string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/dev-idp/authorize", nil)
		req.URL.RawQuery = query
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d", rec.Code)
		}
		if loc := rec.Header().Get("Location"); loc != "" {
			u, err := url.Parse(loc)
			if err != nil || u.Scheme+"://"+u.Host+u.Path != testRedirect {
				t.Fatalf("redirected to %q", loc)
			}
		}
	})
}

// TestLoginPageLook: the sign-in page says in one line what it is, keeps
// the plumbing (the application, where it returns to, the scope) behind a
// <details> fold after the form, and carries the consent page's
// stylesheet, dark mode included.
func TestLoginPageLook(t *testing.T) {
	e := newEnv(t, nil)
	_, body := e.get(t, e.cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if n := strings.Count(body, "Development sign-in — no real identity provider is involved"); n != 1 {
		t.Errorf("the one line saying what the page is appears %d times:\n%s", n, body)
	}
	form, fold := strings.Index(body, "</form>"), strings.Index(body, "<details>")
	end := strings.Index(body, "</details>")
	if form < 0 || fold < form || end < fold {
		t.Fatalf("no <details> fold after the form:\n%s", body)
	}
	inFold := body[fold:end]
	for _, plumbing := range []string{"Application", testClientID, "Returns to", testRedirect, "Scope", "openid profile email"} {
		if !strings.Contains(inFold, html.EscapeString(plumbing)) {
			t.Errorf("the fold lacks %q:\n%s", plumbing, inFold)
		}
		if strings.Contains(body[:fold], html.EscapeString(plumbing)) {
			t.Errorf("%q shows outside the fold", plumbing)
		}
	}
	for _, css := range []string{"color-scheme: light dark", "@media (prefers-color-scheme: dark)", "button.primary", "details"} {
		if !strings.Contains(body, css) {
			t.Errorf("the page's stylesheet lacks %q", css)
		}
	}
	if strings.Contains(body, "/*pagestyle*/") {
		t.Error("the stylesheet placeholder was not replaced")
	}
}
