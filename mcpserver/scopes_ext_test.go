package mcpserver_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
	"github.com/remotemcp/remotemcp/policy"
)

// TestCheckScopesBodyTooLarge: a body over the limit is not judged here;
// ServeHTTP answers it with the 413 it gives any other.
func TestCheckScopesBodyTooLarge(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, &mcp.ServerOptions{SupportedProtocolVersions: mcpserver.SupportedVersions})
	reg := policy.New(s, nil)
	policy.AddTool(reg, &mcp.Tool{Name: "notes_create"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, struct{}, error) {
		return &mcp.CallToolResult{}, struct{}{}, nil
	}, policy.Need("notes:write"))
	h := mcpserver.NewHandler(s, memstore.New(nil), &mcpserver.Options{Policy: reg, MaxBodyBytes: 16})
	t.Cleanup(func() { h.Close() })
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create"}}`))
	got, need, err := h.CheckScopes(req, nil)
	if err != nil || need != nil {
		t.Fatalf("CheckScopes = %v, %v; want no verdict", need, err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, got)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413 (body %q)", rec.Code, rec.Body)
	}
	if b, _ := io.ReadAll(rec.Body); !strings.Contains(string(b), "exceeds 16 bytes") {
		t.Errorf("body %q does not name the limit", b)
	}
}
