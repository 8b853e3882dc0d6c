package mcpserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"
)

// TestView: the fingerprint of a caller's view ignores the order of
// scopes and groups and the form of the groups, changes with any scope,
// group, e-mail address or client id, and is "" without a token or a
// Policy.
func TestView(t *testing.T) {
	h := &Handler{opts: Options{Policy: policy.New(mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil), nil)}}
	view := func(h *Handler, info *auth.TokenInfo) string {
		ctx := context.Background()
		if info != nil {
			// The go-sdk's context key is unexported: fill it as its
			// bearer middleware does.
			var got context.Context
			auth.RequireBearerToken(func(context.Context, string, *http.Request) (*auth.TokenInfo, error) { return info, nil }, nil)(
				http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.Context() }),
			).ServeHTTP(httptest.NewRecorder(), bearerRequest())
			ctx = got
		}
		return h.view(ctx)
	}
	token := func(scopes []string, extra map[string]any) *auth.TokenInfo {
		return &auth.TokenInfo{UserID: "u", Scopes: scopes, Extra: extra, Expiration: time.Now().Add(time.Hour)}
	}
	base := view(h, token([]string{"a", "b"}, map[string]any{"groups": []string{"x", "y"}, "email": "u@example.com", "client_id": "c"}))
	if base == "" {
		t.Fatal("no view for a token")
	}
	for _, tt := range []struct {
		name string
		info *auth.TokenInfo
		same bool
	}{
		{"reordered", token([]string{"b", "a"}, map[string]any{"groups": []any{"y", "x"}, "email": "u@example.com", "client_id": "c"}), true},
		{"another subject, same claims", &auth.TokenInfo{UserID: "v", Scopes: []string{"a", "b"}, Extra: map[string]any{"groups": []string{"x", "y"}, "email": "u@example.com", "client_id": "c"}, Expiration: time.Now().Add(time.Hour)}, true},
		{"a scope more", token([]string{"a", "b", "c"}, map[string]any{"groups": []string{"x", "y"}, "email": "u@example.com", "client_id": "c"}), false},
		{"a scope less", token([]string{"a"}, map[string]any{"groups": []string{"x", "y"}, "email": "u@example.com", "client_id": "c"}), false},
		{"a scope named as a group was", token([]string{"a", "x"}, map[string]any{"groups": []string{"b", "y"}, "email": "u@example.com", "client_id": "c"}), false},
		{"a group less", token([]string{"a", "b"}, map[string]any{"groups": []string{"x"}, "email": "u@example.com", "client_id": "c"}), false},
		{"no e-mail", token([]string{"a", "b"}, map[string]any{"groups": []string{"x", "y"}, "client_id": "c"}), false},
		{"another client", token([]string{"a", "b"}, map[string]any{"groups": []string{"x", "y"}, "email": "u@example.com", "client_id": "d"}), false},
	} {
		if got := view(h, tt.info); (got == base) != tt.same {
			t.Errorf("%s: view %q, base %q; want same: %v", tt.name, got, base, tt.same)
		}
	}
	if got := view(h, nil); got != "" {
		t.Errorf("no token: view %q, want \"\"", got)
	}
	if got := view(&Handler{}, token([]string{"a"}, nil)); got != "" {
		t.Errorf("no Policy: view %q, want \"\"", got)
	}
}

func bearerRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer t")
	return r
}
