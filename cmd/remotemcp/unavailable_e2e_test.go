package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/remotemcp/remotemcp/internal/redistest"
)

// TestEndToEndNotesStoreUnavailable: when Redis goes away, a tool call
// that reaches the notes store before the health gate notices gets the
// 503 with Retry-After every other path gives, in both eras, and the
// store's error (with its internal address) stays in the log.
func TestEndToEndNotesStoreUnavailable(t *testing.T) {
	for _, fault := range []string{"killed", "paused"} {
		t.Run(fault, func(t *testing.T) {
			srv := redistest.Start(t)
			keyFile := filepath.Join(t.TempDir(), "state.key")
			if err := os.WriteFile(keyFile, []byte(testKeyHex), 0o600); err != nil {
				t.Fatal(err)
			}
			s := startServer(t, "--redis-url", "redis://"+srv.Addr, "--state-key-file", keyFile)
			ctx := t.Context()
			sid := s.initLegacy(t, ctx)
			search := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes_search","arguments":{}}}`
			modern := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes_search","arguments":{},` +
				`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
			modernHdr := http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"notes_search"}}
			legacyHdr := http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {"2025-11-25"}}
			if r := s.post(t, ctx, modernHdr, modern); r.status != http.StatusOK {
				t.Fatalf("before the fault: %d %s", r.status, r.body)
			}
			if fault == "killed" {
				srv.Kill()
			} else {
				srv.Pause()
				defer srv.Resume()
			}
			for _, c := range []struct {
				era  string
				hdr  http.Header
				body string
			}{{"2026-07-28", modernHdr, modern}, {"2025-11-25", legacyHdr, search}} {
				r := s.post(t, ctx, c.hdr, c.body)
				if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
					t.Errorf("%s notes_search: %d (Retry-After %q) %.300s; want 503 with Retry-After", c.era, r.status, r.header.Get("Retry-After"), r.body)
				}
				if strings.Contains(string(r.body), "127.0.0.1") || strings.Contains(string(r.body), "redisstore") {
					t.Errorf("%s notes_search: the store's error reached the client: %s", c.era, r.body)
				}
			}
		})
	}
}
