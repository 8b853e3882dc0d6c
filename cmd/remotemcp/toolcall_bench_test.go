package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The request of `make bench` (bench/cmd/mcpbench/mcpclient.go): one
// 2026-07-28 tools/call of the conformance fixture test_simple_text.
const (
	benchTool     = "test_simple_text"
	benchToolText = "This is a simple text response for testing."
	benchCallBody = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + benchTool + `","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"mcpbench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
)

// BenchmarkToolCall measures one 2026-07-28 tools/call through the whole
// handler chain serve puts on the listener, as `make bench` configuration
// (c) runs it (--auth proxy, our ES256 token, in-process stores), beside
// (b), the go-sdk's stateless JSON handler with the same tool. The request
// is served by a direct ServeHTTP, so that allocs/op count the server's
// work only (plus the request and recorder, the same for both): compare
// them with -benchmem, e.g.
//
//	go test ./cmd/remotemcp/ -run '^$' -bench ToolCall -benchmem -count 10
func BenchmarkToolCall(b *testing.B) {
	b.Run("remotemcp", func(b *testing.B) {
		h, host, token := benchProxy(b, false)
		benchCalls(b, h, host, token)
	})
	// The same with the metrics of --metrics-listen on: compare with
	// remotemcp for their cost per call.
	b.Run("remotemcp-metrics", func(b *testing.B) {
		h, host, token := benchProxy(b, true)
		benchCalls(b, h, host, token)
	})
	b.Run("sdk", func(b *testing.B) {
		benchCalls(b, benchSDKHandler(), "127.0.0.1", "")
	})
}

func benchCalls(b *testing.B, h http.Handler, host, token string) {
	call := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(benchCallBody))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", benchTool)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := call(); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), benchToolText) {
		b.Fatalf("tools/call: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rec := call(); rec.Code != http.StatusOK {
			b.Fatalf("tools/call: %d %s", rec.Code, rec.Body)
		}
	}
}

// benchSDKHandler is bench/cmd/mcpbench's peer (b): what most users of the
// go-sdk deploy, the stateless handler with JSON responses and the tool.
func benchSDKHandler() http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "peer", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: benchTool, Description: "Tests simple text content response"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: benchToolText}}}, nil, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
}

// benchProxy builds remotemcp as `make bench` runs configuration (c) and
// serves it on a loopback listener for a real sign-in (registration,
// consent, the development provider, the token endpoint). It returns the
// front handler, the Host to send and the access token. With metrics, the
// server registers its metrics as with --metrics-listen.
func benchProxy(tb testing.TB, metrics bool) (http.Handler, string, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg, err := parseConfig([]string{"--listen", ln.Addr().String(), "--public-url", base, "--fixtures", "conformance",
		"--log-level", "warn", "--auth", "proxy", "--rate-limits", "off", "--access-token-lifetime", "1h"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	if metrics {
		cfg.metrics = newMetricsRegistry()
	}
	log := newLogger(cfg, io.Discard)
	a, err := build(tb.Context(), cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	h := a.handler
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close(); a.close() })
	return h, ln.Addr().String(), benchSignIn(tb, base)
}

// benchSignIn registers a public client, signs in as alice with the
// notes:read scope and returns the access token.
func benchSignIn(tb testing.TB, base string) string {
	tb.Helper()
	redirect := "http://127.0.0.1:9/cb"
	resp, err := http.Post(base+"/register", "application/json", strings.NewReader(
		`{"client_name":"bench","redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`))
	if err != nil {
		tb.Fatal(err)
	}
	var client struct {
		ClientID string `json:"client_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&client)
	resp.Body.Close()
	if err != nil || client.ClientID == "" {
		tb.Fatalf("register: %d %v", resp.StatusCode, err)
	}
	verifier, challenge := pkcePair()
	q := url.Values{"response_type": {"code"}, "client_id": {client.ClientID}, "redirect_uri": {redirect}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}, "state": {"st"}, "resource": {base + "/mcp"}, "scope": {"notes:read"}}
	browser := newFormBrowser(nil)
	browser.fillHost(base, map[string]string{"username": "alice"})
	back, err := browser.run(tb.Context(), base+"/authorize?"+q.Encode(), redirect, nil, "approve")
	if err != nil {
		tb.Fatal(err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "code_verifier": {verifier},
		"redirect_uri": {redirect}, "resource": {base + "/mcp"}, "client_id": {client.ClientID}}
	resp, err = http.Post(base+"/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		tb.Fatalf("token: %d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return tok.AccessToken
}
