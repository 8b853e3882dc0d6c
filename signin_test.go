package remotemcp

import (
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz/upstream"
)

// TestAdmitJWT: with AuthJWT, the allow-list reads the token's claims.
func TestAdmitJWT(t *testing.T) {
	si := &SignIn{Allow: &upstream.AllowList{Groups: []string{"eng"}, EmailDomains: []string{"example.com"}}}
	admit := si.admit(AuthJWT)
	for _, tt := range []struct {
		name  string
		extra map[string]any
		want  bool
	}{
		{"group", map[string]any{"groups": []string{"eng"}}, true},
		{"verified domain", map[string]any{"email": "a@example.com"}, true},
		{"neither", map[string]any{"groups": []string{"sales"}, "email": "a@example.org"}, false},
		{"no claims", map[string]any{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := admit(&auth.TokenInfo{UserID: "u1", Extra: tt.extra})
			if (err == nil) != tt.want {
				t.Errorf("admit = %v, want allowed %v", err, tt.want)
			}
		})
	}
	if si.admit(AuthProxy) != nil || (&SignIn{}).admit(AuthJWT) != nil {
		t.Error("an Admit without a list, or with --auth proxy (checked at sign-in)")
	}
}

// TestConfigureUpstreamMemberships: the github upstream reads the user's
// organizations and teams when the allow-list names some, or when
// SignIn.GitHubMemberships asks for them (items for some teams only), and
// not otherwise.
func TestConfigureUpstreamMemberships(t *testing.T) {
	for _, tt := range []struct {
		name string
		si   SignIn
		want bool
	}{
		{"no lists", SignIn{}, false},
		{"users only", SignIn{Allow: &upstream.AllowList{Users: []string{"1"}}}, false},
		{"an org in the list", SignIn{Allow: &upstream.AllowList{Orgs: []string{"acme"}}}, true},
		{"asked for", SignIn{GitHubMemberships: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := upstream.GitHub(upstream.Config{ClientID: "a", ClientSecret: "b"})
			tt.si.configureUpstream(u)
			if u.GitHubMemberships != tt.want || slices.Contains(u.OAuth2.Scopes, "read:org") != tt.want {
				t.Errorf("memberships %v, scopes %v; want memberships %v", u.GitHubMemberships, u.OAuth2.Scopes, tt.want)
			}
		})
	}
}
