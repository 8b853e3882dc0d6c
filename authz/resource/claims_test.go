package resource

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz/authztest"
)

// TestJWTUserClaims: the groups claim (its name configurable) reaches
// TokenInfo.Extra["groups"] as a sorted []string, and the e-mail address
// Extra["email"] only when email_verified is true.
func TestJWTUserClaims(t *testing.T) {
	clock := authztest.NewClock()
	ec := authztest.NewECKey(t, "ec-1")
	jwks := newJWKSServer(t, ec)
	base := authztest.BaseClaims(clock.Now())
	for _, tt := range []struct {
		name       string
		claim      string
		claims     authztest.Claims
		wantGroups any
		wantEmail  any
	}{
		{"groups array", "", base.With("groups", []string{"ops", "eng", "eng"}), []string{"eng", "ops"}, nil},
		{"groups string", "", base.With("groups", "eng"), []string{"eng"}, nil},
		{"roles object, named claim", "urn:zitadel:iam:org:project:roles", base.With("urn:zitadel:iam:org:project:roles", map[string]any{"writer": map[string]any{"1": "x"}}), []string{"writer"}, nil},
		{"other claim name ignored", "roles", base.With("groups", []string{"eng"}), nil, nil},
		{"not strings", "", base.With("groups", []any{1, true}), nil, nil},
		{"verified email", "", base.With("email", "a@example.com", "email_verified", true), nil, "a@example.com"},
		{"unverified email", "", base.With("email", "a@example.com", "email_verified", false), nil, nil},
		{"email without email_verified", "", base.With("email", "a@example.com"), nil, nil},
		{"email_verified as a string", "", base.With("email", "a@example.com", "email_verified", "true"), nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewJWTVerifier(t.Context(), &JWTOptions{Issuer: authztest.Issuer, JWKSURL: jwks.URL, Audience: authztest.Audience, Now: clock.Now, GroupsClaim: tt.claim})
			if err != nil {
				t.Fatal(err)
			}
			tok := authztest.SignAT(t, ec, tt.claims)
			for _, pass := range []string{"first", "cached"} {
				info, err := v.Verify(t.Context(), tok)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.wantGroups, info.Extra["groups"]); diff != "" {
					t.Errorf("%s: Extra[groups] (-want +got):\n%s", pass, diff)
				}
				if diff := cmp.Diff(tt.wantEmail, info.Extra["email"]); diff != "" {
					t.Errorf("%s: Extra[email] (-want +got):\n%s", pass, diff)
				}
				if g, ok := info.Extra["groups"].([]string); ok && len(g) > 0 {
					g[0] = "scribbled" // must not reach the cache
				}
			}
		})
	}
}

// TestIntrospectionUserClaims: the same for introspection answers.
func TestIntrospectionUserClaims(t *testing.T) {
	clock := authztest.NewClock()
	now := clock.Now()
	s := newIntrospectionServer(t, map[string]any{
		"t-groups":     activeResponse(now, "groups", []string{"eng"}, "email", "a@example.com", "email_verified", true),
		"t-roles":      activeResponse(now, "roles", "admin", "groups", []string{"eng"}),
		"t-unverified": activeResponse(now, "email", "a@example.com"),
	})
	i := newTestIntrospector(t, s.URL, clock, nil)
	roles := newTestIntrospector(t, s.URL, clock, func(o *IntrospectionOptions) { o.GroupsClaim = "roles" })
	for _, tt := range []struct {
		name       string
		i          *Introspector
		token      string
		wantGroups any
		wantEmail  any
	}{
		{"groups and verified email", i, "t-groups", []string{"eng"}, "a@example.com"},
		{"named claim", roles, "t-roles", []string{"admin"}, nil},
		{"unverified email", i, "t-unverified", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second answer is the cache's
				info, err := tt.i.Verify(t.Context(), tt.token)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.wantGroups, info.Extra["groups"]); diff != "" {
					t.Errorf("Extra[groups] (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantEmail, info.Extra["email"]); diff != "" {
					t.Errorf("Extra[email] (-want +got):\n%s", diff)
				}
				if g, ok := info.Extra["groups"].([]string); ok {
					g[0] = "scribbled"
				}
			}
		})
	}
}

// TestRequireBearerAdmit: a valid token of a user Admit refuses gets 403
// access_denied without error= in the challenge (no scope and no new
// token helps), and never reaches the handler.
func TestRequireBearerAdmit(t *testing.T) {
	info := &auth.TokenInfo{UserID: "user-1", Scopes: []string{"notes:read"}, Expiration: time.Now().Add(time.Hour), Extra: map[string]any{"groups": []string{"sales"}}}
	admit := func(i *auth.TokenInfo) error {
		if g, _ := i.Extra["groups"].([]string); len(g) > 0 && g[0] == "eng" {
			return nil
		}
		return errors.New("this server is open only to members of the group(s) eng")
	}
	next := &nextRecorder{}
	h := RequireBearer(staticVerifier(info, nil), &BearerOptions{ResourceMetadataURL: testMetadataURL, Admit: admit})(next)
	rec := serve(h, testToken)
	if rec.Code != http.StatusForbidden || next.calls.Load() != 0 {
		t.Fatalf("refused user: %d, handler called %d times", rec.Code, next.calls.Load())
	}
	if !strings.Contains(rec.Body.String(), `"error":"access_denied"`) || !strings.Contains(rec.Body.String(), "members of the group(s) eng") {
		t.Errorf("body %s", rec.Body)
	}
	if ch := rec.Header().Get("WWW-Authenticate"); strings.Contains(ch, "error=") || !strings.Contains(ch, "resource_metadata=") {
		t.Errorf("challenge %q", ch)
	}
	info.Extra["groups"] = []string{"eng"}
	if rec := serve(h, testToken); rec.Code != http.StatusOK || next.calls.Load() != 1 {
		t.Errorf("allowed user: %d", rec.Code)
	}
}

// serve sends a tools/list POST with token through h.
func serve(h http.Handler, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
