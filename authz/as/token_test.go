package as_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
)

// TestExchangeCode: the authorization_code grant redeems a code once, for
// the client it was issued to, with the PKCE verifier, before it expires,
// for our resource only.
func TestExchangeCode(t *testing.T) {
	for _, tt := range []struct {
		name string
		// change edits the valid request; other is the request's client
		// instead of the code's.
		change  func(r *as.TokenRequest)
		other   bool
		advance time.Duration
		want    string
	}{
		{name: "valid"},
		{name: "no redirect_uri", change: func(r *as.TokenRequest) { r.RedirectURI = "" }},
		{name: "no resource", change: func(r *as.TokenRequest) { r.Resource = nil }},
		{name: "resource with a trailing slash", change: func(r *as.TokenRequest) { r.Resource = []string{testResource + "/"} }},
		{name: "just before expiry", advance: envCodeTTL - time.Second},
		{name: "no code", change: func(r *as.TokenRequest) { r.Code = "" }, want: "invalid_request"},
		{name: "no verifier", change: func(r *as.TokenRequest) { r.CodeVerifier = "" }, want: "invalid_request"},
		{name: "unknown code", change: func(r *as.TokenRequest) { r.Code = "no-such-code" }, want: "invalid_grant"},
		{name: "wrong verifier", change: func(r *as.TokenRequest) { r.CodeVerifier = testVerifier + "x" }, want: "invalid_grant"},
		{name: "challenge as verifier", change: func(r *as.TokenRequest) { r.CodeVerifier = challenge(testVerifier) }, want: "invalid_grant"},
		{name: "another client", other: true, want: "invalid_grant"},
		{name: "another redirect_uri", change: func(r *as.TokenRequest) { r.RedirectURI = "http://127.0.0.1:9/other" }, want: "invalid_grant"},
		{name: "expired", advance: envCodeTTL + time.Second, want: "invalid_grant"},
		{name: "another resource", change: func(r *as.TokenRequest) { r.Resource = []string{"https://evil.example/mcp"} }, want: "invalid_target"},
		{name: "two resources", change: func(r *as.TokenRequest) { r.Resource = []string{testResource, testResource + "/"} }, want: "invalid_target"},
		{name: "no grant type", change: func(r *as.TokenRequest) { r.GrantType = "" }, want: "invalid_request"},
		{name: "password grant", change: func(r *as.TokenRequest) { r.GrantType = "password" }, want: "unsupported_grant_type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none")
			thief, _ := e.register(t, "none")
			req := &as.TokenRequest{Client: c, GrantType: "authorization_code", Code: e.code(t, c, "notes:read notes:write"),
				CodeVerifier: testVerifier, RedirectURI: testRedirect, Resource: []string{testResource}}
			if tt.change != nil {
				tt.change(req)
			}
			if tt.other {
				req.Client = thief
			}
			e.clock.Advance(tt.advance)
			tok, err := e.srv.Exchange(t.Context(), req)
			if got := oauthCode(err); got != tt.want {
				t.Fatalf("Exchange: error %q, want %q", got, tt.want)
			}
			if err != nil {
				return
			}
			want := &as.TokenResponse{TokenType: "Bearer", ExpiresIn: int64(envATLifetime / time.Second), Scope: "notes:read notes:write"}
			if diff := cmp.Diff(want, tok, cmpopts.IgnoreFields(as.TokenResponse{}, "AccessToken", "RefreshToken")); diff != "" {
				t.Errorf("token response (-want +got):\n%s", diff)
			}
			if tok.RefreshToken == "" || tok.RefreshToken == tok.AccessToken {
				t.Errorf("refresh token %q", tok.RefreshToken)
			}
			info, err := e.iss.Verify(t.Context(), tok.AccessToken)
			if err != nil {
				t.Fatalf("the access token does not verify: %v", err)
			}
			got := map[string]any{"sub": info.UserID, "client_id": info.Extra["client_id"], "scopes": info.Scopes}
			wantClaims := map[string]any{"sub": "test:u1", "client_id": c.ClientID, "scopes": []string{"notes:read", "notes:write"}}
			if diff := cmp.Diff(wantClaims, got); diff != "" {
				t.Errorf("access token (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExchangeCodeReplay: a code is single-use; a second use, whoever makes
// it and whether or not the first succeeded, revokes the grant the code
// created, and only that grant.
func TestExchangeCodeReplay(t *testing.T) {
	for _, tt := range []struct {
		name string
		// first is the first redemption's verifier and whether it is made
		// by another client.
		firstVerifier string
		firstByThief  bool
		firstOK       bool
		// replayByThief makes the second redemption another client's.
		replayByThief bool
	}{
		{name: "by the same client", firstVerifier: testVerifier, firstOK: true},
		{name: "by another client", firstVerifier: testVerifier, firstOK: true, replayByThief: true},
		{name: "after a failed PKCE check", firstVerifier: testVerifier + "x"},
		{name: "after another client's attempt", firstVerifier: testVerifier, firstByThief: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none")
			thief, _ := e.register(t, "none")
			other, _ := e.register(t, "none") // a sign-in with c again would replace the bystander's grant
			bystander := e.login(t, other, "notes:read")
			code := e.code(t, c, "notes:read")
			redeem := func(cl *as.Client, verifier string) (*as.TokenResponse, error) {
				return e.srv.Exchange(t.Context(), &as.TokenRequest{Client: cl, GrantType: "authorization_code", Code: code, CodeVerifier: verifier})
			}
			client := func(byThief bool) *as.Client {
				if byThief {
					return thief
				}
				return c
			}
			first, err := redeem(client(tt.firstByThief), tt.firstVerifier)
			if (err == nil) != tt.firstOK {
				t.Fatalf("first redemption: %v, want success %v", err, tt.firstOK)
			}
			if _, err := redeem(client(tt.replayByThief), testVerifier); oauthCode(err) != "invalid_grant" {
				t.Fatalf("replay: %v, want invalid_grant", err)
			}
			if _, err := redeem(c, testVerifier); oauthCode(err) != "invalid_grant" {
				t.Fatalf("third use: %v, want invalid_grant", err)
			}
			if first != nil {
				if e.live(t, first.AccessToken) {
					t.Error("the first redemption's access token survived the replay")
				}
				if _, err := e.refresh(t, c, first.RefreshToken); oauthCode(err) != "invalid_grant" {
					t.Errorf("the first redemption's refresh token after the replay: %v, want invalid_grant", err)
				}
			}
			if !e.live(t, bystander.AccessToken) {
				t.Error("another grant's access token died with the replayed one")
			}
			if _, err := e.refresh(t, other, bystander.RefreshToken); err != nil {
				t.Errorf("another grant's refresh token after the replay: %v", err)
			}
		})
	}
}

// TestExchangeRefresh: the refresh_token grant rotates the token; the
// previous one is honoured for its client within the grace window only;
// past it, its use kills the family; another client can neither use nor
// kill it; scopes can narrow, never widen.
func TestExchangeRefresh(t *testing.T) {
	type step struct {
		advance time.Duration
		// token picks the refresh token to present from those issued so
		// far (0 is the login's); thief presents it as another client.
		token int
		thief bool
		scope string
		// resource, if set, is the request's resource.
		resource string
		want     string
	}
	for _, tt := range []struct {
		name  string
		steps []step
		// dead: the grant is revoked at the end, with every access token.
		dead bool
	}{
		{name: "rotation", steps: []step{{token: 0}, {token: 1}, {token: 2}}},
		{name: "previous token within grace", steps: []step{{token: 0}, {advance: envGrace, token: 0}, {token: 2}}},
		// A retry within grace answers with a new token, which replaces the
		// one the first answer carried: that one is no longer current.
		{name: "the token a retry replaced kills the family", dead: true, steps: []step{
			{token: 0}, {token: 0}, {token: 1, want: "invalid_grant"}, {token: 2, want: "invalid_grant"}}},
		{name: "previous token past grace kills the family", dead: true, steps: []step{
			{token: 0}, {advance: envGrace + time.Second, token: 0, want: "invalid_grant"}, {token: 1, want: "invalid_grant"}}},
		{name: "a token two rotations old kills the family", dead: true, steps: []step{
			{token: 0}, {token: 1}, {token: 0, want: "invalid_grant"}, {token: 2, want: "invalid_grant"}}},
		{name: "another client is refused and harms nothing", steps: []step{
			{token: 0, thief: true, want: "invalid_grant"}, {token: 0}, {token: 0, thief: true, want: "invalid_grant"},
			{token: 1, thief: true, want: "invalid_grant"}, {advance: envGrace + time.Second, token: 1, thief: true, want: "invalid_grant"}, {token: 1}}},
		{name: "narrower scope", steps: []step{{token: 0, scope: "notes:read"}, {token: 1}}},
		{name: "wider scope", steps: []step{{token: 0, scope: "notes:read notes:write notes:admin", want: "invalid_scope"}, {token: 0}}},
		{name: "another resource", steps: []step{{token: 0, resource: "https://evil.example/mcp", want: "invalid_target"}, {token: 0}}},
		{name: "our resource", steps: []step{{token: 0, resource: testResource}}},
		{name: "expired", steps: []step{{advance: envRefreshTTL, token: 0, want: "invalid_grant"}}},
		{name: "use keeps the grant alive", steps: []step{
			{advance: envRefreshTTL - time.Hour, token: 0}, {advance: envRefreshTTL - time.Hour, token: 1}, {advance: envRefreshTTL - time.Hour, token: 2}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none")
			thief, _ := e.register(t, "none")
			login := e.login(t, c, "notes:read notes:write")
			gid := e.grantOf(t, login.AccessToken)
			issued := []string{login.RefreshToken}
			access := []string{login.AccessToken}
			for i, s := range tt.steps {
				e.clock.Advance(s.advance)
				req := &as.TokenRequest{Client: c, GrantType: "refresh_token", RefreshToken: issued[s.token], Scope: s.scope}
				if s.thief {
					req.Client = thief
				}
				if s.resource != "" {
					req.Resource = []string{s.resource}
				}
				tok, err := e.srv.Exchange(t.Context(), req)
				if got := oauthCode(err); got != s.want {
					t.Fatalf("step %d: error %q, want %q", i, got, s.want)
				}
				if err != nil {
					continue
				}
				wantScope := s.scope
				if wantScope == "" {
					wantScope = "notes:read notes:write"
				}
				if tok.Scope != wantScope || tok.TokenType != "Bearer" || tok.AccessToken == "" {
					t.Errorf("step %d: %+v, want a Bearer token for %q", i, tok, wantScope)
				}
				for _, rt := range issued {
					if tok.RefreshToken == rt {
						t.Fatalf("step %d: a refresh token was issued twice", i)
					}
				}
				if g := e.grantOf(t, tok.AccessToken); g != gid {
					t.Errorf("step %d: grant %q, want the login's %q", i, g, gid)
				}
				issued = append(issued, tok.RefreshToken)
				access = append(access, tok.AccessToken)
			}
			if got := e.revoked(t, gid); got != tt.dead {
				t.Errorf("grant revoked %v, want %v", got, tt.dead)
			}
			if tt.dead {
				for i, at := range access {
					if e.live(t, at) {
						t.Errorf("access token %d survived the family", i)
					}
				}
			}
		})
	}
}

// TestExchangeRefreshRevoked: a refresh token of a revoked grant, an
// access token presented as a refresh token, and a missing one.
func TestExchangeRefreshRevoked(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	tok := e.login(t, c, "notes:read")
	for _, tt := range []struct {
		name, token, want string
	}{
		{"missing", "", "invalid_request"},
		{"an access token", tok.AccessToken, "invalid_grant"},
		{"unknown", "no-such-token", "invalid_grant"},
	} {
		if _, err := e.refresh(t, c, tt.token); oauthCode(err) != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	if err := e.srv.Revoke(t.Context(), c, tok.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.refresh(t, c, tok.RefreshToken); oauthCode(err) != "invalid_grant" {
		t.Errorf("a revoked grant's refresh token: %v, want invalid_grant", err)
	}
}

// TestRegistrationUnusedExpires: anyone may register, so a registration
// that never received a token lives NewClientTTL (6 hours), not the 30
// days of a client in use; its first token extends it.
func TestRegistrationUnusedExpires(t *testing.T) {
	e := newEnv(t)
	unused, _ := e.register(t, "none")
	used, _ := e.register(t, "none")
	e.login(t, used, "notes:read")
	e.clock.Advance(6*time.Hour + time.Second)
	if _, err := e.st.GetClient(t.Context(), unused.ClientID); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("a registration unused for 6 hours: GetClient = %v, want ErrNotFound", err)
	}
	e.clock.Advance(29 * 24 * time.Hour)
	if _, err := e.st.GetClient(t.Context(), used.ClientID); err != nil {
		t.Errorf("a client last used 29 days ago: %v", err)
	}
}
