package resource

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// TestSDKRequireBearerToken pins the go-sdk behaviour RequireBearer works
// around (see its comment). A failure here after a go-sdk upgrade means a
// workaround may be unneeded now, or no longer enough: revisit
// RequireBearer before changing the test.
func TestSDKRequireBearerToken(t *testing.T) {
	serve := func(info *auth.TokenInfo, opts *auth.RequireBearerTokenOptions) *httptest.ResponseRecorder {
		h := auth.RequireBearerToken(func(context.Context, string, *http.Request) (*auth.TokenInfo, error) {
			return info, nil
		}, opts)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if auth.TokenInfoFromContext(r.Context()) != info {
				t.Error("the go-sdk middleware did not hand our TokenInfo on")
			}
		}))
		req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	hourAgo := time.Now().Add(-time.Hour)

	// It re-checks expiry against the wall clock: a token our verifier
	// accepted (its clock, its skew) is refused without the 24h skew...
	if rec := serve(&auth.TokenInfo{Expiration: hourAgo}, &auth.RequireBearerTokenOptions{}); rec.Code != http.StatusUnauthorized {
		t.Errorf("expired TokenInfo, no skew: status %d, want 401 (the go-sdk no longer re-checks expiry: drop the 24h ClockSkew)", rec.Code)
	}
	// ...and passes with it.
	if rec := serve(&auth.TokenInfo{Expiration: hourAgo}, &auth.RequireBearerTokenOptions{ClockSkew: 24 * time.Hour}); rec.Code != http.StatusOK {
		t.Errorf("expired TokenInfo, 24h skew: status %d, want 200", rec.Code)
	}
	// It refuses a TokenInfo without expiry unless told otherwise.
	if rec := serve(&auth.TokenInfo{}, &auth.RequireBearerTokenOptions{}); rec.Code != http.StatusUnauthorized {
		t.Errorf("TokenInfo without expiry: status %d, want 401 (AllowMissingExpiration may be unneeded)", rec.Code)
	}
	if rec := serve(&auth.TokenInfo{}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true}); rec.Code != http.StatusOK {
		t.Errorf("TokenInfo without expiry, allowed: status %d, want 200", rec.Code)
	}
	// Its challenges carry no RFC 6750 error=.
	rec := serve(&auth.TokenInfo{Scopes: []string{"a"}}, &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource", Scopes: []string{"b"}})
	if got := rec.Header().Get("WWW-Authenticate"); rec.Code != http.StatusForbidden || strings.Contains(got, "error=") {
		t.Errorf("insufficient scope: status %d, WWW-Authenticate %q; want 403 without error= (the go-sdk may now write RFC 6750 challenges: RequireBearer could leave them to it)", rec.Code, got)
	}
}
