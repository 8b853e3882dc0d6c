package remotemcp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/remotemcp/remotemcp/authz/upstream"
)

// flakyIdP is an identity provider's endpoint that answers 503 until up
// is set: fault injection for an outage at start-up.
type flakyIdP struct {
	up    atomic.Bool
	calls atomic.Int32
	srv   *httptest.Server
}

func newFlakyIdP(t *testing.T, serve func(w http.ResponseWriter, r *http.Request)) *flakyIdP {
	f := &flakyIdP{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		if !f.up.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		serve(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// retryClock drives idpWait's retries: each wait the server asks for
// arrives on asked, and fire ends it.
type retryClock struct {
	asked chan time.Duration
	fire  chan time.Time
}

func newRetryClock() *retryClock {
	return &retryClock{asked: make(chan time.Duration, 16), fire: make(chan time.Time)}
}

func (c *retryClock) after(d time.Duration) <-chan time.Time {
	c.asked <- d
	return c.fire
}

// next waits for the server to ask for its next wait, and returns it.
func (c *retryClock) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.asked:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the server asked for no retry wait")
		return 0
	}
}

// testServer is the Server of opts with the retry clock c, served on a
// loopback httptest server.
func testServer(t *testing.T, c *retryClock, opts *Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.PublicURL == "" {
		opts.PublicURL = "http://127.0.0.1:8080"
	}
	opts.Scopes, opts.RequiredScopes = []Scope{{Name: "notes:read", Description: "Read your notes"}}, []string{"notes:read"}
	s, err := check(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.idpRetry = c.after
	srv, err := newFromSettings(t.Context(), newRegistry(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts
}

// waitIdP waits for the background retries of srv to end (with success).
func waitIdP(t *testing.T, srv *Server) {
	t.Helper()
	select {
	case <-srv.idp.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the identity provider's retries did not end")
	}
	if err := srv.notReady(); err != nil {
		t.Fatalf("not ready once the identity provider answers: %v", err)
	}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, token, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// TestJWKSOutageAtStart: with AuthJWT and a JWKS that answers 503, the
// server starts anyway; /readyz is 503 naming the JWKS URL and what to
// check, /mcp is 503 with Retry-After (never a 401), the metadata and
// /healthz still answer; retries back off (1s, 2s, …); once the JWKS
// answers, /readyz is 200 and /mcp authenticates again: 401 without a
// token, 200 with one signed by the JWKS's key.
func TestJWKSOutageAtStart(t *testing.T) {
	priv, jwksJSON := newTestJWKS(t)
	idp := newFlakyIdP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwksJSON)
	})
	clock := newRetryClock()
	issuer := "http://127.0.0.1:9"
	a, srv := testServer(t, clock, &Options{Auth: AuthJWT, Tokens: TokenOptions{Issuer: issuer, JWKSURL: idp.srv.URL + "/jwks"}})

	if d := clock.next(t); d != idpRetryFirst {
		t.Errorf("first retry after %v, want %v", d, idpRetryFirst)
	}
	r := do(t, "GET", srv.URL+"/readyz", "", "")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, idp.srv.URL+"/jwks") ||
		!strings.Contains(r.body, "HTTP 503") || !strings.Contains(r.body, "check") {
		t.Errorf("/readyz during the outage: %d %q; want 503 naming the JWKS URL, its answer and what to check", r.status, r.body)
	}
	for _, jargon := range []string{"httprc", "resource registered", "context deadline"} {
		if strings.Contains(r.body, jargon) {
			t.Errorf("/readyz speaks the library's language (%q): %q", jargon, r.body)
		}
	}
	r = do(t, "POST", srv.URL+"/mcp", "", initializeBody)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" {
		t.Errorf("/mcp during the outage: %d Retry-After %q; want 503 with Retry-After 1", r.status, r.header.Get("Retry-After"))
	}
	if strings.Contains(r.body, idp.srv.URL) {
		t.Errorf("/mcp's 503 names the provider's URL: %q", r.body)
	}
	for _, p := range []string{"/healthz", "/.well-known/oauth-protected-resource/mcp"} {
		if r := do(t, "GET", srv.URL+p, "", ""); r.status != http.StatusOK {
			t.Errorf("%s during the outage: %d, want 200", p, r.status)
		}
	}

	// Still down: the next wait doubles, and Retry-After follows it.
	clock.fire <- time.Now()
	if d := clock.next(t); d != 2*idpRetryFirst {
		t.Errorf("second retry after %v, want %v", d, 2*idpRetryFirst)
	}
	if r := do(t, "POST", srv.URL+"/mcp", "", initializeBody); r.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q after the second failure, want 2", r.header.Get("Retry-After"))
	}

	idp.up.Store(true)
	clock.fire <- time.Now()
	waitIdP(t, a)
	if r := do(t, "GET", srv.URL+"/readyz", "", ""); r.status != http.StatusOK {
		t.Errorf("/readyz once the JWKS answers: %d %q", r.status, r.body)
	}
	r = do(t, "POST", srv.URL+"/mcp", "", initializeBody)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), "resource_metadata") {
		t.Errorf("/mcp without a token once ready: %d %q, want 401 with a challenge", r.status, r.header.Get("WWW-Authenticate"))
	}
	tok := signTestAT(t, priv, issuer, a.opts.endpoint())
	if r := do(t, "POST", srv.URL+"/mcp", tok, initializeBody); r.status != http.StatusOK {
		t.Errorf("/mcp with a valid token once ready: %d %.300s", r.status, r.body)
	}
	select {
	case d := <-clock.asked:
		t.Errorf("retrying (after %v) once ready", d)
	default:
	}
}

// TestJWKSBackoffBounded: the waits between retries double up to
// idpRetryMax and stay there.
func TestJWKSBackoffBounded(t *testing.T) {
	idp := newFlakyIdP(t, nil)
	clock := newRetryClock()
	testServer(t, clock, &Options{Auth: AuthJWT, Tokens: TokenOptions{Issuer: "http://127.0.0.1:9", JWKSURL: idp.srv.URL + "/jwks"}})
	var got []time.Duration
	for range 8 {
		got = append(got, clock.next(t))
		clock.fire <- time.Now()
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("waits %v, want %v seconds", got, want)
		}
	}
}

// TestIdPMisconfiguredAtStart: a provider that answers, but not with what
// it should (a 404, a document that is not a JWK Set), is a configuration
// error: the server does not start, and says what to check.
func TestIdPMisconfiguredAtStart(t *testing.T) {
	for _, tt := range []struct {
		name  string
		serve func(w http.ResponseWriter, r *http.Request)
		want  []string
	}{
		{"404", http.NotFound, []string{"/jwks", "HTTP 404", "--jwks-url"}},
		{"not a JWK Set", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `<html>`) }, []string{"/jwks", "not a JWK Set"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(tt.serve))
			defer srv.Close()
			a, err := New(t.Context(), newRegistry(), &Options{PublicURL: "http://127.0.0.1:8080", Auth: AuthJWT,
				Tokens: TokenOptions{Issuer: "http://127.0.0.1:9", JWKSURL: srv.URL + "/jwks"}})
			if err == nil {
				a.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestJWKSDiscoveryOutageAtStart: without Tokens.JWKSURL the issuer's metadata
// is discovered first; when it cannot be fetched, the server waits the
// same way and /readyz names the metadata URLs and the JWKS URL setting
// (--jwks-url).
func TestJWKSDiscoveryOutageAtStart(t *testing.T) {
	idp := newFlakyIdP(t, http.NotFound)
	clock := newRetryClock()
	_, srv := testServer(t, clock, &Options{Auth: AuthJWT, Tokens: TokenOptions{Issuer: idp.srv.URL}})
	clock.next(t)
	r := do(t, "GET", srv.URL+"/readyz", "", "")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, idp.srv.URL+"/.well-known/openid-configuration") ||
		!strings.Contains(r.body, "--jwks-url") {
		t.Errorf("/readyz: %d %q; want 503 naming the metadata URL and --jwks-url", r.status, r.body)
	}
}

// TestUpstreamDiscoveryOutageAtStart: with AuthProxy with the upstream "oidc"
// and an upstream whose discovery answers 503, the server starts; /readyz
// names the discovery URL; the authorization server's endpoints and /mcp
// answer 503 with Retry-After, its metadata still answers; once discovery
// succeeds, the provider is filled in (with the sign-in settings) and
// everything serves.
func TestUpstreamDiscoveryOutageAtStart(t *testing.T) {
	var issuer string
	idp := newFlakyIdP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": issuer, "authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token",
			"userinfo_endpoint": issuer + "/userinfo", "token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		})
	})
	issuer = idp.srv.URL
	clock := newRetryClock()
	a, srv := testServer(t, clock, &Options{Auth: AuthProxy, SignIn: SignIn{GroupsClaim: "roles"},
		Proxy: ProxyOptions{Upstream: "oidc", UpstreamIssuer: issuer, ClientID: "id", ClientSecret: "secret"}})

	clock.next(t)
	r := do(t, "GET", srv.URL+"/readyz", "", "")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, issuer+"/.well-known/openid-configuration") || !strings.Contains(r.body, "HTTP 503") {
		t.Errorf("/readyz: %d %q; want 503 naming the discovery URL and its answer", r.status, r.body)
	}
	if strings.Contains(r.body, "authz:") {
		t.Errorf("/readyz speaks the package's language: %q", r.body)
	}
	register := `{"redirect_uris":["http://127.0.0.1:3000/cb"],"token_endpoint_auth_method":"none"}`
	for _, p := range []string{"/register", "/mcp"} {
		r := do(t, "POST", srv.URL+p, "", register)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("POST %s during the outage: %d Retry-After %q, want 503 with Retry-After", p, r.status, r.header.Get("Retry-After"))
		}
	}
	if r := do(t, "GET", srv.URL+"/.well-known/oauth-authorization-server", "", ""); r.status != http.StatusOK {
		t.Errorf("metadata during the outage: %d", r.status)
	}

	idp.up.Store(true)
	clock.fire <- time.Now()
	waitIdP(t, a)
	if got := a.proxy.upstream.GroupsClaim; got != "roles" {
		t.Errorf("the provider discovered in the background reads groups from %q, want the configured \"roles\"", got)
	}
	if r := do(t, "POST", srv.URL+"/register", "", register); r.status != http.StatusCreated {
		t.Errorf("/register once ready: %d %s", r.status, r.body)
	}
}

// TestDiscoverUpstreamFillsIn: the provider discoverUpstream returns
// during an outage is filled in by the discovery that succeeds.
func TestDiscoverUpstreamFillsIn(t *testing.T) {
	clock := newRetryClock()
	var fail atomic.Bool
	fail.Store(true)
	p, w, err := discoverUpstream(t.Context(), t.Context(), slog.New(slog.DiscardHandler), clock.after, "https://idp.example",
		func(context.Context) (*upstream.Provider, error) {
			if fail.Load() {
				return nil, &upstream.Error{Op: "discovery", Status: 502}
			}
			return upstream.NewOIDC("oidc", "https://idp.example", upstream.OIDCEndpoints{AuthorizationEndpoint: "https://idp.example/auth",
				TokenEndpoint: "https://idp.example/token", UserInfoEndpoint: "https://idp.example/me"}, upstream.Config{ClientID: "c"}), nil
		})
	if err != nil || w == nil {
		t.Fatalf("discoverUpstream: %v, wait %v; want a wait", err, w)
	}
	defer w.close()
	clock.next(t)
	if w.err() == nil || !strings.Contains(w.err().Error(), "https://idp.example/.well-known/openid-configuration cannot be fetched (HTTP 502)") {
		t.Errorf("reason %v", w.err())
	}
	fail.Store(false)
	clock.fire <- time.Now()
	<-w.done
	if w.err() != nil || p.OAuth2.Endpoint.AuthURL != "https://idp.example/auth" || p.Name != "oidc" {
		t.Errorf("after discovery: err %v, provider %+v", w.err(), p)
	}
}

// newTestJWKS makes an ES256 key (kid k1) and the JWK Set of its public half.
func newTestJWKS(t *testing.T) (jwk.Key, []byte) {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	priv.Set(jwk.KeyIDKey, "k1")
	priv.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return priv, b
}

// signTestAT signs an RFC 9068 access token for aud with notes:read.
func signTestAT(t *testing.T, priv jwk.Key, iss, aud string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewBuilder().Issuer(iss).Subject("user-1").Audience([]string{aud}).IssuedAt(now).NotBefore(now).
		Expiration(now.Add(time.Hour)).JwtID("jti-1").Claim("scope", "notes:read").Claim("client_id", "c1").Build()
	if err != nil {
		t.Fatal(err)
	}
	hdrs := jws.NewHeaders()
	hdrs.Set(jws.TypeKey, "at+jwt")
	out, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), priv, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestJWKSUnreachableAtStart: a JWKS whose host refuses connections at
// start-up (nothing listens on its port) is waited for the same way, and
// /readyz says the connection was refused; once something listens there
// and serves the JWK Set, the server is ready.
func TestJWKSUnreachableAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	clock := newRetryClock()
	a, srv := testServer(t, clock, &Options{Auth: AuthJWT, Tokens: TokenOptions{Issuer: "http://127.0.0.1:9", JWKSURL: "http://" + addr + "/jwks"}})
	clock.next(t)
	r := do(t, "GET", srv.URL+"/readyz", "", "")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "http://"+addr+"/jwks") || !strings.Contains(r.body, "connection refused") {
		t.Errorf("/readyz: %d %q; want 503 naming the URL and the refused connection", r.status, r.body)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	_, jwksJSON := newTestJWKS(t)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(jwksJSON) }), ReadHeaderTimeout: 5 * time.Second}
	go up.Serve(ln)
	defer up.Close()
	clock.fire <- time.Now()
	waitIdP(t, a)
}

// TestIntrospectionOutageAtStart: AuthIntrospect fetches nothing at
// start-up, so an unreachable introspection endpoint does not stop the
// server: it is ready, and a request with a token gets 503 with
// Retry-After (never a 401) until the endpoint answers.
func TestIntrospectionOutageAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, srv := testServer(t, newRetryClock(), &Options{Auth: AuthIntrospect, Tokens: TokenOptions{Issuer: "http://127.0.0.1:9",
		IntrospectionURL: "http://" + addr + "/introspect", ClientID: "rs", ClientSecret: "secret"}})
	if r := do(t, "GET", srv.URL+"/readyz", "", ""); r.status != http.StatusOK {
		t.Errorf("/readyz: %d %q, want 200", r.status, r.body)
	}
	r := do(t, "POST", srv.URL+"/mcp", "opaque-token", initializeBody)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("/mcp with a token: %d Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
}
