package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/cmd/remotemcp/fixtures"
)

// The server-wide handlers ask each feature in turn, and answer for what
// none handles: an empty completion, an unknown resource.
func TestHandlers(t *testing.T) {
	ctx := t.Context()
	errMine := errors.New("mine")
	var h handlers
	h.add(func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, bool, error) {
		return nil, req.Params.Ref.Name == "mine", errMine
	}, func(_ context.Context, req *mcp.SubscribeRequest) (bool, error) {
		return req.Params.URI == "mine://x", errMine
	})
	h.add(fixtures.Complete, fixtures.Subscribe)

	complete := func(name string) (*mcp.CompleteResult, error) {
		return h.complete(ctx, &mcp.CompleteRequest{Params: &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: name}}})
	}
	if _, err := complete("mine"); !errors.Is(err, errMine) {
		t.Errorf("complete(mine) = %v, want the first feature's answer", err)
	}
	for _, name := range []string{"test_prompt_with_arguments", "nobody's"} {
		r, err := complete(name)
		if err != nil || r == nil || r.Completion.Values == nil || len(r.Completion.Values) != 0 {
			t.Errorf("complete(%s) = %+v, %v; want an empty completion", name, r, err)
		}
	}

	subscribe := func(uri string) error {
		return h.subscribe(ctx, &mcp.SubscribeRequest{Params: &mcp.SubscribeParams{URI: uri}})
	}
	if err := subscribe("mine://x"); !errors.Is(err, errMine) {
		t.Errorf("subscribe(mine://x) = %v, want the first feature's answer", err)
	}
	if err := subscribe("test://watched-resource"); err != nil {
		t.Errorf("subscribe(test://watched-resource) = %v, want the fixtures to accept it", err)
	}
	if err := subscribe("other://x"); err == nil {
		t.Error("subscribe(other://x) succeeded; want resource not found")
	}
}

// options carries every server setting of the flags to the public API, and
// leaves the keys made up at parse time to the API, which makes up its own
// and warns.
func TestOptions(t *testing.T) {
	env := map[string]string{"REMOTEMCP_UPSTREAM_CLIENT_ID": "id", "REMOTEMCP_UPSTREAM_CLIENT_SECRET": "secret"}
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:8080", "--public-url", "https://mcp.example.com", "--auth", "proxy",
		"--upstream", "github", "--rate-limits", "off", "--client-id-metadata-documents=false", "--trusted-proxies", "10.0.0.0/8",
		"--access-token-lifetime", "5m", "--max-registered-clients", "7", "--allowed-origins", "https://app.example.com",
		"--session-ttl", "10m", "--max-sessions-per-user", "3", "--shutdown-timeout", "4s", "--clock-skew", "0s"},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o := options(cfg, slog.New(slog.DiscardHandler))
	got := fmt.Sprintf("%s %s %v %v %v %v %s %d %v %v %d %v %v %v", o.PublicURL, o.Auth, o.RequiredScopes, o.AllowedHosts, o.AllowedOrigins,
		o.Dev, o.SessionTTL, o.MaxSessionsPerUser, o.ShutdownTimeout, o.ClockSkew < 0,
		o.Proxy.MaxClients, o.Proxy.AccessTokenLifetime, o.Proxy.DisableRateLimits, o.Proxy.DisableClientMetadataDocuments)
	want := "https://mcp.example.com proxy [notes:read] [localhost 127.0.0.1 ::1 mcp.example.com] [https://app.example.com] false 10m0s 3 4s true 7 5m0s true true"
	if got != want {
		t.Errorf("options =\n%s\nwant\n%s", got, want)
	}
	if o.Proxy.Upstream != "github" || o.Proxy.ClientID != "id" || o.Proxy.ClientSecret != "secret" || fmt.Sprint(o.Proxy.TrustedProxies) != "[10.0.0.0/8]" {
		t.Errorf("options.Proxy = %+v, want github with the client id, secret and trusted proxies", o.Proxy)
	}
	if o.Proxy.SigningKeys != nil || o.Proxy.VaultKeys != nil || o.Proxy.CookieKey != nil {
		t.Error("options passes keys made up at parse time; want nil, for the API to make up and warn about")
	}
	if o.SignIn.GitHubMemberships {
		t.Error("GitHub memberships read with no rule that needs them")
	}
	// A tool for some teams only needs the user's GitHub teams read.
	cfg.SignIn.ToolRules = map[string]toolRule{"notes_delete": {Scopes: []string{"notes:write"}, Groups: []string{"acme/admins"}}}
	if o := options(cfg, slog.New(slog.DiscardHandler)); !o.SignIn.GitHubMemberships {
		t.Error("a tools.<name>.groups rule did not turn GitHub memberships on")
	}
}
