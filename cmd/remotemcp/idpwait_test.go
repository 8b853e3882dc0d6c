package main

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
	"os"
	"path/filepath"
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

// testApp builds the server of args with the retry clock c and serves it
// on a loopback httptest server.
func testApp(t *testing.T, c *retryClock, args ...string) (*config, *app, *httptest.Server) {
	t.Helper()
	cfg, err := parseConfig(append([]string{"--listen", "127.0.0.1:0"}, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.idpRetry = c.after
	log := slog.New(slog.DiscardHandler)
	a, err := build(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	var draining atomic.Bool
	srv := httptest.NewServer(a.front(log, &draining))
	t.Cleanup(srv.Close)
	return cfg, a, srv
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

// TestJWKSOutageAtStart: with --auth jwt and a JWKS that answers 503, the
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
	cfg, a, srv := testApp(t, clock, "--auth", "jwt", "--issuer", issuer, "--jwks-url", idp.srv.URL+"/jwks")

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
	if err := waitFor(t, 10*time.Second, a.ready); err != nil {
		t.Fatalf("not ready once the JWKS answers: %v", err)
	}
	if r := do(t, "GET", srv.URL+"/readyz", "", ""); r.status != http.StatusOK {
		t.Errorf("/readyz once the JWKS answers: %d %q", r.status, r.body)
	}
	r = do(t, "POST", srv.URL+"/mcp", "", initializeBody)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), "resource_metadata") {
		t.Errorf("/mcp without a token once ready: %d %q, want 401 with a challenge", r.status, r.header.Get("WWW-Authenticate"))
	}
	tok := signTestAT(t, priv, issuer, cfg.endpoint())
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
	testApp(t, clock, "--auth", "jwt", "--issuer", "http://127.0.0.1:9", "--jwks-url", idp.srv.URL+"/jwks")
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
			cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0", "--auth", "jwt", "--issuer", "http://127.0.0.1:9", "--jwks-url", srv.URL + "/jwks"},
				func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			a, err := build(t.Context(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				a.close()
				t.Fatal("build succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestJWKSDiscoveryOutageAtStart: without --jwks-url the issuer's metadata
// is discovered first; when it cannot be fetched, the server waits the
// same way and /readyz names the metadata URLs and --jwks-url.
func TestJWKSDiscoveryOutageAtStart(t *testing.T) {
	idp := newFlakyIdP(t, http.NotFound)
	clock := newRetryClock()
	_, _, srv := testApp(t, clock, "--auth", "jwt", "--issuer", idp.srv.URL)
	clock.next(t)
	r := do(t, "GET", srv.URL+"/readyz", "", "")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, idp.srv.URL+"/.well-known/openid-configuration") ||
		!strings.Contains(r.body, "--jwks-url") {
		t.Errorf("/readyz: %d %q; want 503 naming the metadata URL and --jwks-url", r.status, r.body)
	}
}

// TestUpstreamDiscoveryOutageAtStart: with --auth proxy --upstream oidc
// and an upstream whose discovery answers 503, the server starts; /readyz
// names the discovery URL; the authorization server's endpoints and /mcp
// answer 503 with Retry-After, its metadata still answers; once discovery
// succeeds, the provider is filled in and everything serves.
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
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0", "--auth", "proxy", "--upstream", "oidc", "--upstream-issuer", issuer},
		func(k string) string {
			return map[string]string{"REMOTEMCP_UPSTREAM_CLIENT_ID": "id", "REMOTEMCP_UPSTREAM_CLIENT_SECRET": "secret"}[k]
		}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.idpRetry = clock.after
	log := slog.New(slog.DiscardHandler)
	a, err := build(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	var draining atomic.Bool
	srv := httptest.NewServer(a.front(log, &draining))
	defer srv.Close()

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
	if err := waitFor(t, 10*time.Second, a.ready); err != nil {
		t.Fatalf("not ready once discovery answers: %v", err)
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
	p, w, err := discoverUpstream(t.Context(), slog.New(slog.DiscardHandler), clock.after, "https://idp.example",
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
	_, a, srv := testApp(t, clock, "--auth", "jwt", "--issuer", "http://127.0.0.1:9", "--jwks-url", "http://"+addr+"/jwks")
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
	if err := waitFor(t, 10*time.Second, a.ready); err != nil {
		t.Fatalf("not ready once the JWKS is served: %v", err)
	}
}

// TestIntrospectionOutageAtStart: --auth introspect fetches nothing at
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
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, []byte("rs\nsecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, srv := testApp(t, newRetryClock(), "--auth", "introspect", "--issuer", "http://127.0.0.1:9",
		"--introspection-url", "http://"+addr+"/introspect", "--introspection-credentials-file", creds)
	if r := do(t, "GET", srv.URL+"/readyz", "", ""); r.status != http.StatusOK {
		t.Errorf("/readyz: %d %q, want 200", r.status, r.body)
	}
	r := do(t, "POST", srv.URL+"/mcp", "opaque-token", initializeBody)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("/mcp with a token: %d Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
}
