package as_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/memstore"
	"github.com/remotemcp/remotemcp/authz/token"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// allowEng is an allow-list of the group "eng", with a contact.
func allowEng(o *as.Options) {
	o.Allow = &upstream.AllowList{Groups: []string{"eng"}}
	o.Contact = "it-help@example.com"
}

// signIn runs the whole flow for the upstream's current user and returns
// our tokens.
func (f *fixture) signIn(t *testing.T) *as.TokenResponse {
	t.Helper()
	cookies, state := f.consentThenUpstream(t)
	cb := f.callback(cookies, url.Values{"state": {state}, "code": {"c"}})
	loc, _ := url.Parse(cb.Header().Get("Location"))
	if cb.Code != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("callback: %d to %q\n%s", cb.Code, cb.Header().Get("Location"), cb.Body)
	}
	return f.tokenOK(t, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {testVerifier}, "redirect_uri": {testRedirect}})
}

// token posts form (with the client id) to /token and wants a 200.
func (f *fixture) tokenOK(t *testing.T, form url.Values) *as.TokenResponse {
	t.Helper()
	rec := f.tokenRequest(form)
	var tok as.TokenResponse
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &tok) != nil {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	return &tok
}

func (f *fixture) tokenRequest(form url.Values) *httptest.ResponseRecorder {
	form.Set("client_id", f.clientID)
	return f.do(httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode())), "application/x-www-form-urlencoded")
}

var hrefRE = regexp.MustCompile(`<a href="([^"]+)"`)

// TestCallbackRefusedByAllowList: a user the allow-list leaves out sees a
// page on our origin that says why and whom to ask, with a link that tells
// the client access_denied; no code, no grant.
func TestCallbackRefusedByAllowList(t *testing.T) {
	f := newFixtureWith(t, allowEng)
	f.up.groups = []string{"sales"}
	cookies, state := f.consentThenUpstream(t)
	rec := f.callback(cookies, url.Values{"state": {state}, "code": {"c"}})
	if rec.Code != http.StatusForbidden || rec.Header().Get("Location") != "" {
		t.Fatalf("callback: %d to %q, want a 403 page", rec.Code, rec.Header().Get("Location"))
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("page headers: %v", rec.Header())
	}
	body := html.UnescapeString(rec.Body.String())
	for _, want := range []string{"may not use", `"u1" is not one of them`, "ask it-help@example.com"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not say %q:\n%s", want, body)
		}
	}
	// The lists are for the operators: a refused user (anyone the
	// upstream signs in) learns neither the groups nor the domains.
	if strings.Contains(body, "eng") {
		t.Errorf("the page names the allowed group:\n%s", body)
	}
	m := hrefRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("no link back to the app:\n%s", body)
	}
	back, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil || !strings.HasPrefix(back.String(), testRedirect+"?") {
		t.Fatalf("link to %q, want the registered redirect URI", m[1])
	}
	q := back.Query()
	if q.Get("error") != "access_denied" || q.Get("state") != "s1" || q.Get("iss") != testIssuer || q.Has("code") {
		t.Errorf("link query %v: want error=access_denied with state and iss, no code", q)
	}
	if rec := f.callback(cookies, url.Values{"state": {state}, "code": {"c"}}); rec.Code != http.StatusBadRequest {
		t.Errorf("state reused after a refusal: %d", rec.Code)
	}

}

// TestAllowedUserClaims: an allowed user's groups and verified e-mail
// reach our access token, and TokenInfo.Extra.
func TestAllowedUserClaims(t *testing.T) {
	f := newFixtureWith(t, allowEng)
	f.up.groups, f.up.email = []string{"eng", "ops"}, "u1@example.com"
	tok := f.signIn(t)
	info, err := f.iss.Verify(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"eng", "ops"}, info.Extra["groups"]); diff != "" {
		t.Errorf("Extra[groups] (-want +got):\n%s", diff)
	}
	if info.Extra["email"] != "u1@example.com" {
		t.Errorf("Extra[email] = %v", info.Extra["email"])
	}

	// A refresh re-reads the groups: the new token has the current ones.
	f.up.groups = []string{"eng"}
	fresh := f.tokenOK(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	info, err = f.iss.Verify(t.Context(), fresh.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"eng"}, info.Extra["groups"]); diff != "" {
		t.Errorf("Extra[groups] after refresh (-want +got):\n%s", diff)
	}
}

// TestRefreshRefusedByAllowList: a user removed from the allowed group
// loses access at the next refresh: invalid_grant, the grant revoked (its
// access tokens stop working), and the refresh token dead.
func TestRefreshRefusedByAllowList(t *testing.T) {
	f := newFixtureWith(t, allowEng)
	f.up.groups = []string{"eng"}
	tok := f.signIn(t)
	if _, err := f.iss.Verify(t.Context(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	f.up.groups = []string{"sales"}
	rec := f.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"invalid_grant"`) {
		t.Fatalf("refresh of a removed user: %d %s", rec.Code, rec.Body)
	}
	if _, err := f.iss.Verify(t.Context(), tok.AccessToken); !errors.Is(err, authz.ErrInvalidToken) {
		t.Errorf("the removed user's access token still verifies: %v", err)
	}
	// Back in the group: the grant stays revoked.
	f.up.groups = []string{"eng"}
	if rec := f.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}); rec.Code != http.StatusBadRequest {
		t.Errorf("second refresh: %d %s", rec.Code, rec.Body)
	}
}

// TestRefreshRecheckOutage: an upstream that does not answer at refresh
// keeps the grant (an outage is not a logout), with the groups it had.
func TestRefreshRecheckOutage(t *testing.T) {
	f := newFixtureWith(t, allowEng)
	f.up.groups = []string{"eng"}
	tok := f.signIn(t)
	f.up.identityErr = fmt.Errorf("userinfo: %w", upstream.ErrUnavailable)
	fresh := f.tokenOK(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	info, err := f.iss.Verify(t.Context(), fresh.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"eng"}, info.Extra["groups"]); diff != "" {
		t.Errorf("Extra[groups] (-want +got):\n%s", diff)
	}
	// A refusal to say who the user is ends the grant.
	f.up.identityErr = errors.New("authz: upstream userinfo: HTTP 401")
	if rec := f.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fresh.RefreshToken}}); rec.Code != http.StatusBadRequest {
		t.Errorf("refresh when the upstream refuses: %d %s", rec.Code, rec.Body)
	}
}

// TestRefreshRefusedThroughVault: the refresh re-check with the real
// upstream.Vault, which asks a userinfo endpoint (on loopback) with the
// grant's stored upstream token: a user the endpoint no longer puts in
// the group loses the grant at the next refresh.
func TestRefreshRefusedThroughVault(t *testing.T) {
	var groups atomic.Pointer[string]
	eng := `["eng"]`
	groups.Store(&eng)
	userinfo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer upstream-") {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sub":"u1","groups":%s}`, *groups.Load())
	}))
	t.Cleanup(userinfo.Close)
	provider := upstream.NewOIDC("oidc", "https://idp.example.com", upstream.OIDCEndpoints{UserInfoEndpoint: userinfo.URL}, upstream.Config{HTTPClient: userinfo.Client()})

	st := memstore.New(nil)
	k, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := token.NewKeyRing(k)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := token.NewIssuer(ring, &token.IssuerOptions{Issuer: testIssuer, Audience: testResource,
		Revoked: func(ctx context.Context, gid, _ string) (bool, error) { return st.GrantRevoked(ctx, gid) }})
	if err != nil {
		t.Fatal(err)
	}
	allow := &upstream.AllowList{Groups: []string{"eng"}}
	vault := upstream.NewVault(st, st, vaultKeys, provider, &upstream.VaultOptions{Allow: allow})
	up := &faultyUpstream{subject: "u1", groups: []string{"eng"}}
	srv, err := as.New(as.Stores{Clients: st, Pending: st, Codes: st, Grants: st, Refresh: st, Consents: st}, iss, up, vault, &as.Options{
		Issuer: testIssuer, Resource: testResource, UpstreamName: "Test IdP", SubjectPrefix: "test:", Allow: allow,
		Scopes:    []as.ScopeInfo{{Name: "notes:read", Description: "read"}},
		CookieKey: []byte("0123456789abcdef0123456789abcdef"),
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{iss: iss, srv: srv, h: srv.Handler(), up: up}
	rec := f.do(httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(
		`{"client_name":"unit","redirect_uris":["`+testRedirect+`"],"token_endpoint_auth_method":"none"}`)), "application/json")
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &reg) != nil {
		t.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	f.clientID = reg.ClientID

	tok := f.signIn(t)
	tok = f.tokenOK(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	info, err := iss.Verify(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := info.Extra["gid"].(string)
	sales := `["sales"]`
	groups.Store(&sales)
	rec = f.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "no longer allowed") {
		t.Fatalf("refresh of a removed user: %d %s", rec.Code, rec.Body)
	}
	if _, err := iss.Verify(t.Context(), tok.AccessToken); !errors.Is(err, authz.ErrInvalidToken) {
		t.Errorf("the removed user's access token: %v", err)
	}
	if _, err := vault.Token(t.Context(), gid); !errors.Is(err, upstream.ErrReauthorize) {
		t.Errorf("the revoked grant's upstream token: %v, want ErrReauthorize", err)
	}
}
