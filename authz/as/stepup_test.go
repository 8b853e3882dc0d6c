package as_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
)

// stepUpSubject is the subject of env's upstream user.
const stepUpSubject = "test:u1"

// TestStepUpRefusesOneRefresh: after the resource server wanted
// notes:write for a notes:read grant, the next refresh is invalid_grant;
// the grant is not revoked, its access token still verifies, and the same
// refresh token works on the next try (the mark is taken once).
func TestStepUpRefusesOneRefresh(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	tok := e.login(t, c, "notes:read")
	gid := e.grantOf(t, tok.AccessToken)

	e.srv.WantStepUp(t.Context(), gid, []string{"notes:write"})
	_, err := e.refresh(t, c, tok.RefreshToken)
	if got := oauthCode(err); got != string(authz.InvalidGrant) {
		t.Fatalf("refresh after the step-up mark: %s, want invalid_grant", got)
	}
	if e.revoked(t, gid) || !e.live(t, tok.AccessToken) {
		t.Errorf("the refusal revoked the grant (revoked %v, access token live %v)", e.revoked(t, gid), e.live(t, tok.AccessToken))
	}
	again, err := e.refresh(t, c, tok.RefreshToken)
	if err != nil {
		t.Fatalf("the refused refresh token on the next try: %v", err)
	}
	if again.Scope != "notes:read" {
		t.Errorf("scope %q, want notes:read (a refresh adds nothing)", again.Scope)
	}
}

// TestStepUpRefreshCoveringPasses: a mark the refresh's scopes already
// cover (a token narrowed by an earlier refresh, whose grant holds more)
// lets the refresh through.
func TestStepUpRefreshCoveringPasses(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	tok := e.login(t, c, "notes:read notes:write")
	e.srv.WantStepUp(t.Context(), e.grantOf(t, tok.AccessToken), []string{"notes:write"})
	if _, err := e.refresh(t, c, tok.RefreshToken); err != nil {
		t.Fatalf("a refresh to scopes that cover the mark: %v", err)
	}
}

// TestStepUpMarkExpires: past Options.StepUpTTL (default a minute) the
// grant's mark is gone and the refresh works; past PendingTTL the mark for
// the next authorization is gone too.
func TestStepUpMarkExpires(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	tok := e.login(t, c, "notes:read")
	e.srv.WantStepUp(t.Context(), e.grantOf(t, tok.AccessToken), []string{"notes:write"})
	e.clock.Advance(time.Minute + time.Nanosecond)
	tok, err := e.refresh(t, c, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh after the mark's lifetime: %v", err)
	}

	e.srv.WantStepUp(t.Context(), e.grantOf(t, tok.AccessToken), []string{"notes:write"})
	if _, err := e.refresh(t, c, tok.RefreshToken); oauthCode(err) != string(authz.InvalidGrant) {
		t.Fatalf("refresh: %v, want invalid_grant", err)
	}
	e.clock.Advance(envPendingTTL + time.Nanosecond)
	if got, _ := e.authorizeScopes(t, c, []*http.Cookie{e.srv.UserCookie(stepUpSubject)}, "none"); !slices.Equal(got, []string{"notes:read"}) {
		t.Errorf("an authorization past PendingTTL asks for %v, want [notes:read]", got)
	}
}

// TestStepUpIgnoresUnknownScopes: only scopes the server offers make a
// mark; a grant nobody marked refreshes.
func TestStepUpIgnoresUnknownScopes(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	tok := e.login(t, c, "notes:read")
	gid := e.grantOf(t, tok.AccessToken)
	e.srv.WantStepUp(t.Context(), gid, []string{"admin", strings.Repeat("x", 4096)})
	e.srv.WantStepUp(t.Context(), "", []string{"notes:write"})
	e.srv.WantStepUp(t.Context(), "another-grant", []string{"notes:write"})
	if _, err := e.refresh(t, c, tok.RefreshToken); err != nil {
		t.Fatalf("refresh: %v", err)
	}
}

// TestStepUpCarriesToNextAuthorization: after a refused refresh, the next
// authorization request of that client, from a browser signed in as that
// user, asks for the missing scope as well, once; another user's browser,
// a browser without our cookie, a cross-site request and another client
// get only what they asked for.
func TestStepUpCarriesToNextAuthorization(t *testing.T) {
	for _, tt := range []struct {
		name   string
		user   string // the user cookie's subject ("" none)
		site   string // Sec-Fetch-Site
		other  bool   // the request is another client's
		scopes []string
	}{
		{"same client and user", stepUpSubject, "none", false, []string{"notes:read", "notes:write"}},
		{"no user cookie", "", "none", false, []string{"notes:read"}},
		{"another user", "test:u2", "none", false, []string{"notes:read"}},
		{"cross-site", stepUpSubject, "cross-site", false, []string{"notes:read"}},
		{"another client", stepUpSubject, "none", true, []string{"notes:read"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none")
			tok := e.login(t, c, "notes:read")
			e.srv.WantStepUp(t.Context(), e.grantOf(t, tok.AccessToken), []string{"notes:write"})
			if _, err := e.refresh(t, c, tok.RefreshToken); oauthCode(err) != string(authz.InvalidGrant) {
				t.Fatalf("refresh: %v, want invalid_grant", err)
			}
			asking := c
			if tt.other {
				asking, _ = e.register(t, "none")
			}
			scopes := func() ([]string, bool) {
				t.Helper()
				var cookies []*http.Cookie
				if tt.user != "" {
					cookies = append(cookies, e.srv.UserCookie(tt.user))
				}
				return e.authorizeScopes(t, asking, cookies, tt.site)
			}
			got, page := scopes()
			if !slices.Equal(got, tt.scopes) {
				t.Errorf("the authorization asks for %v, want %v", got, tt.scopes)
			}
			if len(got) > 1 && !page {
				t.Errorf("the added scope was not shown on the consent page (a remembered approval of notes:read applied)")
			}
			if got, _ := scopes(); !slices.Equal(got, []string{"notes:read"}) {
				t.Errorf("the next authorization asks for %v, want [notes:read] (the mark is taken once)", got)
			}
		})
	}
}

// TestStepUpOffWithoutStore: without a StepUps store, WantStepUp does
// nothing and refreshes work.
func TestStepUpOffWithoutStore(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	tok := e.login(t, c, "notes:read")
	srv, err := as.New(as.Stores{Clients: e.st, Pending: e.st, Codes: e.st, Grants: e.st, Refresh: e.st, Consents: e.st},
		e.iss, e.up, e.vault, &as.Options{Issuer: testIssuer, Resource: testResource, UpstreamName: "Test IdP",
			Scopes: []as.ScopeInfo{{Name: "notes:read"}, {Name: "notes:write"}}, CookieKey: []byte("0123456789abcdef0123456789abcdef"),
			Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv.WantStepUp(t.Context(), e.grantOf(t, tok.AccessToken), []string{"notes:write"})
	if _, err := srv.Exchange(t.Context(), &as.TokenRequest{Client: c, GrantType: "refresh_token", RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatalf("refresh: %v", err)
	}
}

// authorizeScopes runs GET /authorize for c asking for notes:read, with
// cookies and Sec-Fetch-Site, and returns the scopes of the pending
// authorization and whether the consent page was shown (else a remembered
// approval sent the browser upstream).
func (e *env) authorizeScopes(t *testing.T, c *as.Client, cookies []*http.Cookie, site string) (_ []string, page bool) {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {testRedirect},
		"code_challenge": {challenge(testVerifier)}, "code_challenge_method": {"S256"}, "scope": {"notes:read"}}
	rec := e.get(as.PathAuthorize+"?"+q.Encode(), cookies, map[string]string{"Sec-Fetch-Site": site})
	var id string
	switch tx := txRE.FindStringSubmatch(rec.Body.String()); {
	case rec.Code == http.StatusOK && tx != nil: // the consent page
		id, page = tx[1], true
	case rec.Code == http.StatusFound: // a remembered approval: upstream, state "<id>.<secret>"
		id, _, _ = strings.Cut(upstreamState(t, rec.Header().Get("Location")), ".")
	default:
		t.Fatalf("authorize: %d %s", rec.Code, rec.Body)
	}
	p, err := e.st.GetPending(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p.Scopes, page
}
