package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// claimsOf decodes the payload of our access token (already verified by
// the server that issued it; the test only reads it).
func claimsOf(t *testing.T, tok map[string]any) map[string]any {
	t.Helper()
	at, _ := tok["access_token"].(string)
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWT", at)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSignInAllowListDev: through the whole server with the development
// provider, a user on the allow-list signs in and one who is not gets the
// refusal page (403) that names the contact, and no code.
func TestSignInAllowListDev(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips the end-to-end OAuth flows (make test runs them)")
	}
	s := startDevProxy(t, "--allow-users", "alice", "--signin-contact", "ops@example.com")
	c := s.register(t, nil)
	tok := c.login(t, s.newUser(t), "notes:read")
	if st := s.mcpStatus(t, tok["access_token"].(string)); st != 200 {
		t.Errorf("alice's tool call: %d", st)
	}

	bob := s.newUser(t)
	bob.b.fillHost(s.upstreamHost, map[string]string{"username": "bob"})
	_, challenge := pkcePair()
	q, err := bob.authorize(t.Context(), c.authURL(challenge, "st", "notes:read", nil), c.redirect)
	if err == nil {
		t.Fatalf("bob was let in: %v", q)
	}
	for _, want := range []string{"status 403", "may not use", "ask ops@example.com", `"bob" is not one of them`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("bob's refusal does not say %q:\n%v", want, err)
		}
	}
}

// TestSignInGroupsZitadel: with a real OpenID provider (the zitadel
// example OP, whose custom_scope adds an object claim custom_claim with
// the keys client and other), the configured groups claim is read, checked
// against the allow-list, and put in our access token with the verified
// e-mail address; a list the user is not in refuses them.
func TestSignInGroupsZitadel(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips the end-to-end OAuth flows (make test runs them)")
	}
	scopes := []string{"--upstream-scopes", "openid profile email offline_access custom_scope", "--groups-claim", "custom_claim"}
	t.Run("allowed", func(t *testing.T) {
		s := startZitadelProxy(t, append(scopes, "--allow-groups", "other")...)
		tok := s.register(t, nil).login(t, s.newUser(t), "notes:read")
		c := claimsOf(t, tok)
		if diff := cmp.Diff([]any{"client", "other"}, c["groups"]); diff != "" {
			t.Errorf("groups claim (-want +got):\n%s", diff)
		}
		if c["email"] != "test-user@zitadel.ch" {
			t.Errorf("email claim %v, want the verified address", c["email"])
		}
	})
	t.Run("refused", func(t *testing.T) {
		s := startZitadelProxy(t, append(scopes, "--allow-groups", "admins", "--allow-email-domains", "example.com")...)
		c := s.register(t, nil)
		_, challenge := pkcePair()
		_, err := s.newUser(t).authorize(t.Context(), c.authURL(challenge, "st", "notes:read", nil), c.redirect)
		if err == nil || !strings.Contains(err.Error(), "status 403") || !strings.Contains(err.Error(), "is not one of them") || strings.Contains(err.Error(), "admins") {
			t.Fatalf("a user outside the list: %v", err)
		}
	})
}

// TestSignInAllowListJWT: with --auth jwt, the allow-list reads the
// token's claims: a valid token of a user off the list gets 403
// access_denied, and the client does not loop through authorizations.
func TestSignInAllowListJWT(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Node authorization server; -short skips it (make test runs it)")
	}
	ln, base := reserve(t)
	issuer := startProvider(t, "RESOURCE="+base+"/mcp")
	s := startOAuthServer(t, ln, base, "--auth", "jwt", "--issuer", issuer, "--allow-users", "bob")
	browser := &headlessBrowser{redirect: "http://127.0.0.1:8765/callback"}
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "go-sdk e2e", RedirectURIs: []string{browser.redirect}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		}},
		RedirectURL:              browser.redirect,
		AuthorizationCodeFetcher: browser.fetch,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "oauth-e2e", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.resource, OAuthHandler: h}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err == nil {
		cs.Close()
		t.Fatal("alice, who is not on the list, connected")
	}
	t.Logf("refused: %v", err)
	if !strings.Contains(err.Error(), "403") && !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("connect error %v, want a 403", err)
	}
	if n := browser.count.Load(); n != 1 {
		t.Errorf("%d authorizations, want 1 (a refused user is not sent to authorize again)", n)
	}
}
