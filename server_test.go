package remotemcp

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/authz/upstream"
	"github.com/remotemcp/remotemcp/internal/redistest"
	"github.com/remotemcp/remotemcp/policy"
)

func echo(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, struct{}, error) {
	return nil, struct{}{}, nil
}

// newRegistry is a server with one tool that needs the scope "read".
func newRegistry() *policy.Registry {
	reg := policy.New(mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil), nil)
	policy.AddTool(reg, &mcp.Tool{Name: "echo"}, echo, policy.Need("read"))
	return reg
}

// Options that would make a server anyone can misuse, or that cannot work,
// are refused with an error that says what to change.
func TestNewOptionErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts *Options
		want string
	}{
		{"nil options", nil, "PublicURL"},
		{"no public URL", &Options{Dev: true}, "PublicURL"},
		{"relative public URL", &Options{PublicURL: "mcp.example.com", Dev: true}, "absolute"},
		{"public URL with a query", &Options{PublicURL: "https://mcp.example.com/?a=b", Auth: AuthJWT, Tokens: TokenOptions{Issuer: "https://as.example.com"}}, "query"},
		{"plain http off loopback", &Options{PublicURL: "http://mcp.example.com", Auth: AuthJWT, Tokens: TokenOptions{Issuer: "https://as.example.com"}}, "plain http"},
		{"Dev off loopback", &Options{PublicURL: "https://mcp.example.com", Dev: true}, "loopback"},
		{"no authentication without Dev", &Options{PublicURL: "http://127.0.0.1:8080"}, "AuthNone"},
		{"jwt without an issuer", &Options{PublicURL: "https://mcp.example.com", Auth: AuthJWT}, "Tokens.Issuer"},
		{"introspect without an issuer", &Options{PublicURL: "https://mcp.example.com", Auth: AuthIntrospect}, "Tokens.Issuer"},
		{"development upstream without Dev", &Options{PublicURL: "https://mcp.example.com", Auth: AuthProxy}, "development upstream"},
		{"unknown upstream", &Options{PublicURL: "https://mcp.example.com", Auth: AuthProxy, Proxy: ProxyOptions{Upstream: "myspace"}}, "myspace"},
		{"upstream without credentials", &Options{PublicURL: "https://mcp.example.com", Auth: AuthProxy, Proxy: ProxyOptions{Upstream: "github"}}, "ClientID"},
		{"oidc upstream without an issuer", &Options{PublicURL: "https://mcp.example.com", Auth: AuthProxy, Proxy: ProxyOptions{Upstream: "oidc", ClientID: "a", ClientSecret: "b"}}, "UpstreamIssuer"},
		{"oidc upstream over plain http", &Options{PublicURL: "https://mcp.example.com", Auth: AuthProxy, Proxy: ProxyOptions{Upstream: "oidc", UpstreamIssuer: "http://idp.example.com", ClientID: "a", ClientSecret: "b"}}, "plain http"},
		{"replicas with made-up keys", &Options{PublicURL: "https://mcp.example.com", Auth: AuthProxy, Proxy: ProxyOptions{Upstream: "github", ClientID: "a", ClientSecret: "b"}, RedisURL: "redis://127.0.0.1:6379"}, "share keys"},
		{"short cookie key", &Options{PublicURL: "http://127.0.0.1:8080", Dev: true, Auth: AuthProxy, Proxy: ProxyOptions{CookieKey: []byte("short")}}, "CookieKey"},
		{"jwt issuer over plain http", &Options{PublicURL: "https://mcp.example.com", Auth: AuthJWT, Tokens: TokenOptions{Issuer: "http://as.example.com"}}, "plain http"},
		{"jwt JWKS URL not http", &Options{PublicURL: "https://mcp.example.com", Auth: AuthJWT, Tokens: TokenOptions{Issuer: "https://as.example.com", JWKSURL: "ftp://as.example.com/keys"}}, "JWKSURL"},
		{"introspection without credentials", &Options{PublicURL: "https://mcp.example.com", Auth: AuthIntrospect, Tokens: TokenOptions{Issuer: "https://as.example.com", IntrospectionURL: "https://as.example.com/introspect"}}, "ClientSecret"},
		{"unknown auth", &Options{PublicURL: "https://mcp.example.com", Auth: "basic"}, "basic"},
		{"empty required scope", &Options{PublicURL: "http://127.0.0.1:8080", Dev: true, RequiredScopes: []string{""}}, "RequiredScopes"},
		{"bad Redis URL", &Options{PublicURL: "http://127.0.0.1:8080", Dev: true, RedisURL: "http://u:hunter2@redis:6379"}, "redis URL"},
		{"bad Redis mode", &Options{PublicURL: "http://127.0.0.1:8080", Dev: true, RedisURL: "redis://redis:6379", RedisMode: "ring"}, "ring"},
		{"allow-list with no authentication", &Options{PublicURL: "http://127.0.0.1:8080", Dev: true, SignIn: SignIn{Allow: &upstream.AllowList{Users: []string{"alice"}}}}, "no users to check"},
		{"GitHub teams with jwt", &Options{PublicURL: "https://mcp.example.com", Auth: AuthJWT, Tokens: TokenOptions{Issuer: "https://as.example.com"}, SignIn: SignIn{Allow: &upstream.AllowList{Teams: []string{"org/team"}}}}, "github upstream"},
		{"malformed allow-list entry", &Options{PublicURL: "https://mcp.example.com", Auth: AuthJWT, Tokens: TokenOptions{Issuer: "https://as.example.com"}, SignIn: SignIn{Allow: &upstream.AllowList{EmailDomains: []string{" example.com"}}}}, "email_domains"},
		{"sentinel without a master", &Options{PublicURL: "http://127.0.0.1:8080", Dev: true, RedisURL: "redis://s1:26379", RedisMode: "sentinel"}, "master_name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(t.Context(), newRegistry(), tt.opts)
			if err == nil {
				srv.Close()
				t.Fatalf("New accepted %+v", tt.opts)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v; want an error mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("New: %v: the error shows the Redis password", err)
			}
		})
	}
}

// An item added to the server directly, after New, is caught by Serve,
// which refuses to serve it; one that went through the Registry is served.
func TestServeRefusesItemWithoutRule(t *testing.T) {
	reg := newRegistry()
	srv, err := New(t.Context(), reg, &Options{PublicURL: "http://127.0.0.1:8080", Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	policy.AddTool(reg, &mcp.Tool{Name: "later"}, echo, policy.Open) // fine: it has a rule
	mcp.AddTool(reg.Server(), &mcp.Tool{Name: "sneaky"}, echo)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Serve(t.Context(), ln)
	if err == nil || !strings.Contains(err.Error(), `"sneaky"`) || strings.Contains(err.Error(), `"later"`) {
		t.Errorf("Serve = %v, want an error naming the tool sneaky only", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener is still open after Serve refused to serve")
	}
}

// The routes of a Server with authentication: the metadata names the
// endpoint and its required scopes, /mcp without a token gets the 401
// challenge that points at it, the health checks answer, and the access
// log never shows a query string.
func TestRoutes(t *testing.T) {
	var logs bytes.Buffer
	srv, err := New(t.Context(), newRegistry(), &Options{
		PublicURL: "http://127.0.0.1:8080", Dev: true, Auth: AuthProxy,
		Scopes: []Scope{{Name: "read", Description: "Read"}}, RequiredScopes: []string{"read"}, ResourceName: "test",
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tt := range []struct {
		method, path string
		status       int
		body         string // in the body or the WWW-Authenticate header
	}{
		{"GET", "/.well-known/oauth-protected-resource/mcp", 200, `"resource": "http://127.0.0.1:8080/mcp"`},
		{"GET", "/.well-known/oauth-authorization-server", 200, `"http://127.0.0.1:8080/token"`},
		{"POST", "/mcp?access_token=secret-in-query", 400, ""},
		{"POST", "/mcp", 401, `resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"`},
		{"GET", "/healthz", 200, "ok"},
		{"GET", "/readyz", 200, "ready"},
		{"GET", "/dev-idp/.well-known/openid-configuration", 200, "authorization_endpoint"},
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(tt.method, "http://127.0.0.1:8080"+tt.path, strings.NewReader("{}")))
		if rec.Code != tt.status || !strings.Contains(rec.Body.String()+rec.Header().Get("WWW-Authenticate"), tt.body) {
			t.Errorf("%s %s = %d %s %s; want %d with %q", tt.method, tt.path, rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body, tt.status, tt.body)
		}
	}
	if strings.Contains(logs.String(), "secret-in-query") {
		t.Errorf("the log shows a query string:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "path=/healthz") {
		t.Errorf("no access-log line for /healthz:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "no signing key, vault key, cookie key configured") {
		t.Errorf("no warning about the keys made up for the process:\n%s", logs.String())
	}
	if _, err := srv.UpstreamIdentity(t.Context(), &auth.TokenInfo{}); err == nil {
		t.Error("UpstreamIdentity of a token without an upstream sign-in succeeded")
	}
}

// Dev is refused on a listener off loopback.
func TestServeDevOffLoopback(t *testing.T) {
	srv, err := New(t.Context(), newRegistry(), &Options{PublicURL: "http://127.0.0.1:8080", Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(t.Context(), ln); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Serve on %s with Dev = %v, want a refusal", ln.Addr(), err)
	}
}

// UpstreamIdentity needs AuthProxy.
func TestUpstreamIdentityWithoutProxy(t *testing.T) {
	srv, err := New(t.Context(), newRegistry(), &Options{PublicURL: "http://127.0.0.1:8080", Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.UpstreamIdentity(t.Context(), &auth.TokenInfo{Extra: map[string]any{"gid": "g"}}); err == nil {
		t.Error("UpstreamIdentity without AuthProxy succeeded")
	}
	if srv.Redis() != nil {
		t.Error("Redis() is set without RedisURL")
	}
}

// With Redis, the server is ready while Redis answers; when it stops, the
// server says it is not ready and answers 503 with Retry-After (not a 401
// that would send clients to sign in again), and recovers by itself.
func TestRedisReadiness(t *testing.T) {
	rs := redistest.Start(t)
	srv, err := New(t.Context(), newRegistry(), &Options{PublicURL: "http://127.0.0.1:8080", Dev: true, RedisURL: rs.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Redis() == nil || !srv.Ready() {
		t.Fatalf("Redis() = %v, Ready() = %v; want a client, ready", srv.Redis(), srv.Ready())
	}
	rs.Kill()
	waitReady(t, srv, false)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("POST", "http://127.0.0.1:8080/mcp", strings.NewReader("{}")))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("/mcp with Redis down = %d (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:8080"+path, nil))
		if rec.Code != want {
			t.Errorf("%s with Redis down = %d, want %d", path, rec.Code, want)
		}
	}
	rs.Restart()
	waitReady(t, srv, true)
}

// waitReady waits for the background pings (one a second) to make Ready
// return want.
func waitReady(t *testing.T, srv *Server, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Ready() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Ready() did not become %v within 10s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
