package resource_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/resource"
)

func ExampleRequireBearer() {
	// In production the verifier is (*authz.JWTVerifier).Verify or
	// (*authz.Introspector).Verify; here one token grants read-only access.
	verify := func(_ context.Context, token string) (*auth.TokenInfo, error) {
		if token != "read-only-token" {
			return nil, fmt.Errorf("%w: the signature does not verify", authz.ErrInvalidToken)
		}
		return &auth.TokenInfo{UserID: "alice", Scopes: []string{"notes:read"}, Expiration: time.Now().Add(time.Hour)}, nil
	}
	// In production CheckScopes is the MCP endpoint's
	// (*mcpserver.Handler).CheckScopes, which reads the JSON-RPC body once
	// and asks each item's policy; here creating needs notes:write.
	checkScopes := func(r *http.Request, info *auth.TokenInfo) (*http.Request, []string, error) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"notes_create"`)) && !slices.Contains(info.Scopes, "notes:write") {
			return r, []string{"notes:write"}, nil
		}
		return r, nil, nil
	}

	mcp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The MCP layer reads identity from the go-sdk's TokenInfo.
		fmt.Fprintf(w, "hello %s", auth.TokenInfoFromContext(r.Context()).UserID)
	})
	h := resource.RequireBearer(verify, &resource.BearerOptions{
		ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		Scopes:              []string{"notes:read"},
		CheckScopes:         checkScopes,
	})(mcp)

	send := func(token, body string) {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if www := rec.Header().Get("WWW-Authenticate"); www != "" {
			fmt.Println(rec.Code, www)
			return
		}
		fmt.Println(rec.Code, rec.Body)
	}
	read := `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"notes://1"}}`
	create := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes_create","arguments":{"title":"t"}}}`
	send("", read)
	send("forged-token", read)
	send("read-only-token", read)
	send("read-only-token", create)
	// Output:
	// 401 Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="notes:read"
	// 401 Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="notes:read", error="invalid_token", error_description="the signature does not verify"
	// 200 hello alice
	// 403 Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="notes:write", error="insufficient_scope", error_description="this operation needs the scopes: notes:write"
}
