package as_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/authztest"
	"github.com/remotemcp/remotemcp/authz/memstore"
	"github.com/remotemcp/remotemcp/authz/token"
)

// The lifetimes of the test server: the defaults, spelled out so that the
// tests can step the clock over them.
const (
	envCodeTTL    = time.Minute
	envPendingTTL = 10 * time.Minute
	envRefreshTTL = 30 * 24 * time.Hour
	envGrace      = 30 * time.Second
	envATLifetime = 10 * time.Minute
	envSkew       = 30 * time.Second
)

// env is an authorization server on in-process stores, a fake upstream
// and one fixed clock shared by the server, its stores and its token
// issuer: the domain methods are called directly.
type env struct {
	srv *as.Server
	h   http.Handler
	// st is the store; the server reaches it through faults, which fails
	// the calls a test asks it to.
	st     *memstore.Store
	faults *faultyStore
	logs   *bytes.Buffer
	iss    *token.Issuer
	up     *faultyUpstream
	vault  *mapVault
	clock  *authztest.Clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := authztest.ClockAt(time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC))
	st := memstore.New(&memstore.Options{Now: clock.Now})
	faults := &faultyStore{Store: st}
	k, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := token.NewKeyRing(k)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := token.NewIssuer(ring, &token.IssuerOptions{Issuer: testIssuer, Audience: testResource,
		AccessTokenLifetime: envATLifetime, ClockSkew: envSkew, Now: clock.Now,
		Revoked: func(ctx context.Context, gid, _ string) (bool, error) { return faults.GrantRevoked(ctx, gid) }})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, faults: faults, logs: &bytes.Buffer{}, iss: iss, up: &faultyUpstream{subject: "u1"}, vault: &mapVault{m: map[string]*oauth2.Token{}}, clock: clock}
	opts := as.Options{
		Issuer: testIssuer, Resource: testResource, UpstreamName: "Test IdP", SubjectPrefix: "test:",
		Scopes:    []as.ScopeInfo{{Name: "notes:read", Description: "read"}, {Name: "notes:write", Description: "write"}},
		CookieKey: []byte("0123456789abcdef0123456789abcdef"),
		CodeTTL:   envCodeTTL, PendingTTL: envPendingTTL, RefreshTTL: envRefreshTTL, RefreshGrace: envGrace,
		Now: clock.Now, Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	f := e.faults
	stores := as.Stores{Clients: f, Pending: f, Codes: f, Grants: f, Refresh: f, Consents: f, StepUps: f}
	e.srv, err = as.New(stores, iss, e.up, e.vault, &opts)
	if err != nil {
		t.Fatal(err)
	}
	e.h = e.srv.Handler()
	return e
}

// register registers a client with the given token endpoint auth method
// ("none" for a public client) and redirect URIs (testRedirect if none);
// it returns the client and its secret.
func (e *env) register(t *testing.T, method string, redirects ...string) (*as.Client, string) {
	t.Helper()
	if len(redirects) == 0 {
		redirects = []string{testRedirect}
	}
	resp, err := e.srv.Register(httptest.NewRequest(http.MethodPost, "/register", nil), &as.ClientMetadata{
		ClientName: "unit " + method, RedirectURIs: redirects, TokenEndpointAuthMethod: method,
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.st.GetClient(t.Context(), resp.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	return c, resp.ClientSecret
}

// authReq is a valid authorization request of c for scope.
func authReq(c *as.Client, scope string) *as.AuthorizeRequest {
	return &as.AuthorizeRequest{ResponseType: "code", ClientID: c.ClientID, RedirectURI: testRedirect, Scope: scope,
		State: "client-state", CodeChallenge: challenge(testVerifier), CodeChallengeMethod: "S256", Resource: []string{testResource}}
}

// approved runs Authorize and Approve for c in browser; it returns the
// pending authorization and the state sent upstream.
func (e *env) approved(t *testing.T, c *as.Client, scope, browser string) (*as.PendingAuth, string) {
	t.Helper()
	p, _, err := e.srv.Authorize(t.Context(), authReq(c, scope), browser)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	u, err := e.srv.Approve(t.Context(), p, "")
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	return p, upstreamState(t, u)
}

func upstreamState(t *testing.T, upstreamURL string) string {
	t.Helper()
	loc, err := url.Parse(upstreamURL)
	if err != nil || loc.Host != "upstream.test" || loc.Query().Get("state") == "" {
		t.Fatalf("upstream URL %q", upstreamURL)
	}
	return loc.Query().Get("state")
}

// code runs the whole authorization of c for scope, up to our code.
func (e *env) code(t *testing.T, c *as.Client, scope string) string {
	t.Helper()
	_, state := e.approved(t, c, scope, "browser-1")
	res, err := e.srv.Callback(t.Context(), url.Values{"state": {state}, "code": {"upstream-code"}}, "browser-1")
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	return res.Code
}

// login runs the authorization of c for scope and redeems the code.
func (e *env) login(t *testing.T, c *as.Client, scope string) *as.TokenResponse {
	t.Helper()
	tok, err := e.srv.Exchange(t.Context(), &as.TokenRequest{Client: c, GrantType: "authorization_code",
		Code: e.code(t, c, scope), CodeVerifier: testVerifier, RedirectURI: testRedirect, Resource: []string{testResource}})
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

func (e *env) refresh(t *testing.T, c *as.Client, rt string) (*as.TokenResponse, error) {
	t.Helper()
	return e.srv.Exchange(t.Context(), &as.TokenRequest{Client: c, GrantType: "refresh_token", RefreshToken: rt})
}

// grantOf is the grant of an access token we issued (which must verify).
func (e *env) grantOf(t *testing.T, at string) string {
	t.Helper()
	info, err := e.iss.Verify(t.Context(), at)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	gid, _ := info.Extra["gid"].(string)
	return gid
}

// live reports whether an access token still verifies (it fails once its
// grant is revoked).
func (e *env) live(t *testing.T, at string) bool {
	t.Helper()
	_, err := e.iss.Verify(t.Context(), at)
	return err == nil
}

// revoked reports whether the grant is revoked.
func (e *env) revoked(t *testing.T, gid string) bool {
	t.Helper()
	r, err := e.st.GrantRevoked(t.Context(), gid)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// oauthCode is the OAuth error code of err, "" for nil, and a marker for
// an error that is not an OAuth error.
func oauthCode(err error) string {
	if err == nil {
		return ""
	}
	var oe *authz.Error
	if errors.As(err, &oe) {
		return string(oe.Code)
	}
	return fmt.Sprintf("not an OAuth error: %v", err)
}

// outcome is where an error of Authorize or Callback is shown: a page for
// the user (with its status and title) or a redirect to the client (with
// the OAuth error code, the client's state and the URI).
// outcome is what an error of the authorization flow does: a page (its
// status and title, and in Error the OAuth error it names in parentheses,
// if any) or a redirect to the client (Error, State, RedirectURI).
type outcome struct {
	Page        int
	Title       string
	Error       string
	State       string
	RedirectURI string
}

// pageCode finds the OAuth error an error page names: "(invalid_scope)".
var pageCode = regexp.MustCompile(`\(([a-z_]+)\)`)

func outcomeOf(err error) outcome {
	if err == nil {
		return outcome{}
	}
	if status, title, ok := as.PageError(err); ok {
		o := outcome{Page: status, Title: title}
		if m := pageCode.FindStringSubmatch(as.PageDetail(err)); m != nil {
			o.Error = m[1]
		}
		return o
	}
	if uri, state, oe, ok := as.RedirectError(err); ok {
		return outcome{Error: string(oe.Code), State: state, RedirectURI: uri}
	}
	return outcome{Error: "unexpected: " + err.Error()}
}

// form posts a form to the handler, with cookies and headers.
func (e *env) form(path string, form url.Values, cookies []*http.Cookie, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.serve(r, cookies, hdr)
}

func (e *env) get(path string, cookies []*http.Cookie, hdr map[string]string) *httptest.ResponseRecorder {
	return e.serve(httptest.NewRequest(http.MethodGet, path, nil), cookies, hdr)
}

func (e *env) serve(r *http.Request, cookies []*http.Cookie, hdr map[string]string) *httptest.ResponseRecorder {
	for _, c := range cookies {
		r.AddCookie(c)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r)
	return rec
}
