package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// proxyServer is remotemcp with --auth proxy, started in-process.
type proxyServer struct {
	base, resource string
	upstreamFill   map[string]string // the upstream login form's fields
	upstreamHost   string            // where that form is
}

// startProxy starts remotemcp --auth proxy on ln; env is its environment.
func startProxy(t *testing.T, ln net.Listener, base string, env map[string]string, args ...string) *proxyServer {
	t.Helper()
	return startProxyClock(t, ln, base, env, nil, args...)
}

// startProxyClock is startProxy whose authorization server reads the clock
// now (nil: time.Now).
func startProxyClock(t *testing.T, ln net.Listener, base string, env map[string]string, now func() time.Time, args ...string) *proxyServer {
	t.Helper()
	// Rate limits off: these tests make many requests from one address on
	// purpose; TestProxyRateLimits turns them on.
	cfg, err := parseConfig(append([]string{"--listen", ln.Addr().String(), "--public-url", base, "--auth", "proxy", "--rate-limits", "off"}, args...),
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.now = now
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := build(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); a.close() })
	return &proxyServer{base: base, resource: base + "/mcp", upstreamFill: map[string]string{"username": "alice"}, upstreamHost: base}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startDevProxy is remotemcp with the built-in development provider.
func startDevProxy(t *testing.T, args ...string) *proxyServer {
	ln, base := reserve(t)
	return startProxy(t, ln, base, nil, args...)
}

// startZitadelProxy is remotemcp in front of the zitadel example OP, a
// real OpenID provider without dynamic registration.
func startZitadelProxy(t *testing.T, args ...string) *proxyServer {
	ln, base := reserve(t)
	issuer, id, secret := startZitadel(t, base+"/callback")
	s := startProxy(t, ln, base, map[string]string{"REMOTEMCP_UPSTREAM_CLIENT_ID": id, "REMOTEMCP_UPSTREAM_CLIENT_SECRET": secret},
		append([]string{"--upstream-issuer", issuer, "--upstream-scopes", "openid profile email offline_access"}, args...)...)
	s.upstreamFill = map[string]string{"username": zitadelUser, "password": zitadelPassword}
	s.upstreamHost = issuer
	return s
}

// user is a person at a browser: consent decisions and upstream login.
type user struct {
	b      *formBrowser
	press  string // the consent button: approve or deny
	visits atomic.Int32
}

func (s *proxyServer) newUser(t *testing.T) *user {
	b := newFormBrowser(nil)
	if testing.Verbose() {
		b.logf = t.Logf
	}
	b.fillHost(s.upstreamHost, s.upstreamFill)
	return &user{b: b, press: "approve"}
}

// authorize plays the browser from the authorization URL to the redirect.
func (u *user) authorize(ctx context.Context, authURL, redirect string) (url.Values, error) {
	u.visits.Add(1)
	got, err := u.b.run(ctx, authURL, redirect, nil, u.press)
	if err != nil {
		return nil, err
	}
	return got.Query(), nil
}

// goClient connects the go-sdk client through our authorization server:
// discovery, dynamic registration, consent, upstream login, token.
func (s *proxyServer) goClient(t *testing.T, u *user, version string) *mcp.ClientSession {
	t.Helper()
	redirect := "http://127.0.0.1:8765/callback"
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName:              "go-sdk proxy e2e",
			RedirectURIs:            []string{redirect},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
		}},
		RedirectURL: redirect,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			q, err := u.authorize(ctx, args.URL, redirect)
			if err != nil {
				return nil, err
			}
			if e := q.Get("error"); e != "" {
				return nil, fmt.Errorf("authorization failed: %s %s", e, q.Get("error_description"))
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "proxy-e2e", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.resource, OAuthHandler: h}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect through OAuth: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// TestProxyGoClient: the go-sdk client, both eras, against the development
// provider and against a real OpenID provider (zitadel): registration ⇒
// consent ⇒ upstream login ⇒ token ⇒ tools, a step-up to notes:write, and
// whoami showing the upstream identity fetched live with the vaulted token.
func TestProxyGoClient(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips the end-to-end OAuth flows (make test runs them)")
	}
	for _, up := range []struct {
		name    string
		start   func(*testing.T, ...string) *proxyServer
		subject string
		login   string
	}{
		{"dev", startDevProxy, "dev|alice", "alice"},
		{"zitadel", startZitadelProxy, "oidc:" + zitadelSubject, zitadelUser},
	} {
		t.Run(up.name, func(t *testing.T) {
			s := up.start(t)
			for _, version := range []string{"2025-11-25", "2026-07-28"} {
				t.Run(version, func(t *testing.T) {
					u := s.newUser(t)
					cs := s.goClient(t, u, version)
					who := whoamiOf(t, cs)
					if who["subject"] != up.subject {
						t.Errorf("whoami subject = %v, want %q", who["subject"], up.subject)
					}
					upstream, _ := who["upstream"].(map[string]any)
					if upstream["login"] != up.login {
						t.Errorf("whoami upstream = %v (error %v), want login %q", who["upstream"], who["upstreamError"], up.login)
					}
					// notes:write needs a step-up: one more authorization.
					res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "notes_create", Arguments: map[string]any{"title": "proxy " + version, "body": "hello"}})
					if err != nil || res.IsError {
						t.Fatalf("notes_create: %v %+v", err, res)
					}
					if n := u.visits.Load(); n != 2 {
						t.Errorf("the user authorized %d times, want 2 (notes:read, then the step-up)", n)
					}
				})
			}
		})
	}
}

// manualClient is an OAuth client driven step by step, for the flows and
// attacks the SDK clients do not expose.
type manualClient struct {
	s        *proxyServer
	id       string
	secret   string
	redirect string
}

func (s *proxyServer) register(t *testing.T, md map[string]any) *manualClient {
	t.Helper()
	if md == nil {
		md = map[string]any{"client_name": "manual", "redirect_uris": []string{"http://127.0.0.1:9/cb"}, "token_endpoint_auth_method": "none",
			"grant_types": []string{"authorization_code", "refresh_token"}}
	}
	body, _ := json.Marshal(md)
	resp, err := http.Post(s.base+"/register", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ClientID     string   `json:"client_id"`
		ClientSecret string   `json:"client_secret"`
		RedirectURIs []string `json:"redirect_uris"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&out) != nil || out.ClientID == "" {
		t.Fatalf("register: %d", resp.StatusCode)
	}
	return &manualClient{s: s, id: out.ClientID, secret: out.ClientSecret, redirect: out.RedirectURIs[0]}
}

func pkcePair() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authURL is an authorization request of c with PKCE; extra overrides.
func (c *manualClient) authURL(challenge, state, scope string, extra url.Values) string {
	q := url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}, "state": {state}, "resource": {c.s.resource}, "scope": {scope}}
	for k, v := range extra {
		q[k] = v
	}
	return c.s.base + "/authorize?" + q.Encode()
}

// token POSTs a token request and decodes the answer.
func (c *manualClient) token(t *testing.T, form url.Values) (int, map[string]any, http.Header) {
	t.Helper()
	if c.secret == "" {
		form.Set("client_id", c.id)
	}
	req, _ := http.NewRequest(http.MethodPost, c.s.base+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

// login runs a whole authorization for c as u and returns the token
// response.
func (c *manualClient) login(t *testing.T, u *user, scope string) map[string]any {
	t.Helper()
	verifier, challenge := pkcePair()
	q, err := u.authorize(t.Context(), c.authURL(challenge, "st", scope, nil), c.redirect)
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("code") == "" || q.Get("state") != "st" || q.Get("iss") != c.s.base {
		t.Fatalf("authorization response %v: want code, state st and iss %s", q, c.s.base)
	}
	st, tok, _ := c.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {verifier},
		"redirect_uri": {c.redirect}, "resource": {c.s.resource}})
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, tok)
	}
	return tok
}

// mcpStatus calls tools/call whoami (2026-07-28) with a bearer token and
// returns the HTTP status.
func (s *proxyServer) mcpStatus(t *testing.T, token string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	req, _ := http.NewRequest(http.MethodPost, s.resource, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", "whoami")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestProxyRateLimits: with the default limits, the 21st registration from
// one address within a minute gets 429 with Retry-After and an OAuth error
// body, and other endpoints keep their own budgets.
func TestProxyRateLimits(t *testing.T) {
	s := startDevProxy(t, "--rate-limits", "on")
	body := `{"client_name":"rl","redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}`
	var last *http.Response
	n := 0
	for ; n < 40; n++ {
		resp, err := http.Post(s.base+"/register", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		last = resp
		if resp.StatusCode != http.StatusCreated {
			break
		}
	}
	if n != 20 || last.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("registration %d answered %d; want 20 registrations, then 429", n+1, last.StatusCode)
	}
	if ra := last.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 without a usable Retry-After: %q", ra)
	}
	// The token endpoint has its own budget: a bad request there is a 400, not a 429.
	resp, err := http.Post(s.base+"/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=authorization_code&client_id=x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests {
		t.Error("/token shares /register's budget")
	}
	// /revoke and /introspect authenticate the client (fetching the
	// document of a URL client id): they spend /token's budget, 120 a
	// minute per address, of which /token above took one.
	for i := range 119 {
		path := []string{"/revoke", "/introspect"}[i%2]
		resp, err := http.Post(s.base+path, "application/x-www-form-urlencoded", strings.NewReader(fmt.Sprintf("token=t&client_id=c%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d to %s limited before the budget was spent", i+2, path)
		}
	}
	for _, path := range []string{"/revoke", "/introspect", "/token"} {
		resp, err := http.Post(s.base+path, "application/x-www-form-urlencoded", strings.NewReader("token=t&client_id=https%3A%2F%2Fapp.example%2Fc.json"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s past /token's budget: %d, want 429 with Retry-After", path, resp.StatusCode)
		}
	}
}
