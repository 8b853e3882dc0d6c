package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTypeScriptClients drives the server with the real TypeScript SDK
// clients, v1 (legacy sessions) and v2 (legacy, auto-negotiated and pinned
// 2026-07-28), through testdata/clients/ts-client.mjs. The pinned Node 22 and
// SDKs come from .ci/npm, installed into .cache/npm by .ci/deps.sh (make test
// runs it first).
func TestTypeScriptClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node clients; -short skips it (make test runs it)")
	}
	node, dir := oauthNode(t)
	// Node resolves packages from the script's folder: run it beside node_modules.
	scriptPath := oauthScript(t, dir, "testdata/clients/ts-client.mjs")

	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler)
	t.Cleanup(func() { srv.Close(); a.close() })

	for _, tt := range []struct {
		name        string
		args        []string
		wantVersion string
		wantSession bool
	}{
		{"v1 legacy", []string{"v1"}, "2025-11-25", true},
		{"v2 legacy", []string{"v2", "legacy"}, "2025-11-25", true},
		{"v2 auto", []string{"v2", "auto"}, "2026-07-28", false},
		{"v2 pinned 2026-07-28", []string{"v2", "2026-07-28"}, "2026-07-28", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, append([]string{scriptPath, srv.URL + "/mcp"}, tt.args...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("client failed: %v\n%s", err, stderr.String())
			}
			var got struct {
				ProtocolVersion string   `json:"protocolVersion"`
				SessionID       *string  `json:"sessionId"`
				Tools           []string `json:"tools"`
				Deleted         bool     `json:"deleted"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("client output %q: %v", out, err)
			}
			if got.ProtocolVersion != tt.wantVersion {
				t.Errorf("protocol version = %q, want %q", got.ProtocolVersion, tt.wantVersion)
			}
			if hasSession := got.SessionID != nil && *got.SessionID != ""; hasSession != tt.wantSession {
				t.Errorf("session id = %v, want a session: %v", got.SessionID, tt.wantSession)
			}
			if !got.Deleted {
				t.Error("the confirmed delete did not happen")
			}
		})
	}
}
