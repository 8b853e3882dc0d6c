package as_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz/as"
)

// TestRevoke: RFC 7009. The owner's refresh or access token revokes the
// whole grant, whatever the hint; anything else (unknown, garbage, another
// client's) is ignored without error and revokes nothing.
func TestRevoke(t *testing.T) {
	for _, tt := range []struct {
		name string
		// token picks the token to revoke from the victim's login.
		token   func(tok *as.TokenResponse) string
		hint    string
		byThief bool
		// want: the victim's grant is revoked.
		want bool
	}{
		{name: "refresh token", token: refreshOf, want: true},
		{name: "refresh token, hinted", token: refreshOf, hint: "refresh_token", want: true},
		{name: "refresh token, hinted as access token", token: refreshOf, hint: "access_token", want: true},
		{name: "access token", token: accessOf, want: true},
		{name: "access token, hinted", token: accessOf, hint: "access_token", want: true},
		{name: "access token, hinted as refresh token", token: accessOf, hint: "refresh_token", want: true},
		{name: "access token, unknown hint", token: accessOf, hint: "bogus_hint", want: true},
		{name: "another client's refresh token", token: refreshOf, byThief: true},
		{name: "another client's access token", token: accessOf, byThief: true},
		{name: "another client's access token, hinted", token: accessOf, hint: "access_token", byThief: true},
		{name: "unknown token", token: func(*as.TokenResponse) string { return "unknown-token" }},
		{name: "JWT-shaped garbage", token: func(*as.TokenResponse) string { return "a.b.c" }, hint: "access_token"},
		{name: "tampered access token", token: func(tok *as.TokenResponse) string { return tok.AccessToken + "x" }},
		{name: "long garbage", token: func(*as.TokenResponse) string { return strings.Repeat("x", 5000) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none")
			thief, _ := e.register(t, "client_secret_basic")
			victim := e.login(t, c, "notes:read")
			other, _ := e.register(t, "none") // a sign-in with c again would replace the victim's grant
			bystander := e.login(t, other, "notes:read")
			gid := e.grantOf(t, victim.AccessToken)
			by := c
			if tt.byThief {
				by = thief
			}
			if err := e.srv.Revoke(t.Context(), by, tt.token(victim), tt.hint); err != nil {
				t.Fatalf("Revoke: %v, want nil", err)
			}
			if got := e.revoked(t, gid); got != tt.want {
				t.Errorf("grant revoked %v, want %v", got, tt.want)
			}
			// The grant stands or falls as a whole: access and refresh.
			if got := e.live(t, victim.AccessToken); got == tt.want {
				t.Errorf("access token live %v after revocation %v", got, tt.want)
			}
			if _, err := e.refresh(t, c, victim.RefreshToken); (err != nil) != tt.want {
				t.Errorf("refresh after revocation %v: %v", tt.want, err)
			}
			if !e.live(t, bystander.AccessToken) {
				t.Error("another grant was revoked")
			}
			// Revoking again is no error either.
			if err := e.srv.Revoke(t.Context(), by, tt.token(victim), tt.hint); err != nil {
				t.Errorf("second Revoke: %v, want nil", err)
			}
		})
	}
}

func refreshOf(tok *as.TokenResponse) string { return tok.RefreshToken }
func accessOf(tok *as.TokenResponse) string  { return tok.AccessToken }

// TestIntrospect: RFC 7662. Only a confidential client may ask, and only
// about its own live access tokens; everything else is just inactive.
func TestIntrospect(t *testing.T) {
	e := newEnv(t)
	conf, _ := e.register(t, "client_secret_basic")
	other, _ := e.register(t, "client_secret_post")
	pub, _ := e.register(t, "none")
	revoked := e.login(t, conf, "notes:read")
	if err := e.srv.Revoke(t.Context(), conf, revoked.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	own := e.login(t, conf, "notes:read notes:write")
	othersTok := e.login(t, other, "notes:read")
	issuedAt := e.clock.Now()
	inactive := &as.IntrospectionResponse{}
	for _, tt := range []struct {
		name    string
		client  *as.Client
		token   string
		advance time.Duration
		want    *as.IntrospectionResponse
		wantErr string
	}{
		{name: "own access token", client: conf, token: own.AccessToken, want: &as.IntrospectionResponse{
			Active: true, Scope: "notes:read notes:write", ClientID: conf.ClientID, Subject: "test:u1",
			Audience: testResource, Issuer: testIssuer, ExpiresAt: issuedAt.Add(envATLifetime).Unix(), TokenType: "Bearer"}},
		{name: "a public client", client: pub, token: own.AccessToken, wantErr: "invalid_client"},
		{name: "another client's token", client: conf, token: othersTok.AccessToken, want: inactive},
		{name: "a refresh token", client: conf, token: own.RefreshToken, want: inactive},
		{name: "garbage", client: conf, token: "garbage", want: inactive},
		{name: "a revoked grant's token", client: conf, token: revoked.AccessToken, want: inactive},
		{name: "an expired token", client: conf, token: own.AccessToken, advance: envATLifetime + envSkew, want: inactive},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			got, err := e.srv.Introspect(t.Context(), tt.client, tt.token)
			if oauthCode(err) != tt.wantErr {
				t.Fatalf("Introspect: %v, want %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Introspect (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRevokeIntrospectHTTP: the endpoints around Revoke and Introspect:
// client authentication first, a token required, 200 with no body for
// any revocation, and an inactive answer that says nothing else.
func TestRevokeIntrospectHTTP(t *testing.T) {
	e := newEnv(t)
	conf, secret := e.register(t, "client_secret_basic")
	pub, _ := e.register(t, "none")
	confTok := e.login(t, conf, "notes:read")
	pubTok := e.login(t, pub, "notes:read")
	basic := map[string]string{"Authorization": "Basic " + basicAuth(conf.ClientID, secret)}
	type answer struct {
		Status int
		Body   map[string]any
	}
	for _, tt := range []struct {
		name string
		path string
		form url.Values
		hdr  map[string]string
		want answer
	}{
		{"revoke unknown", "/revoke", url.Values{"token": {"unknown"}, "client_id": {pub.ClientID}}, nil, answer{Status: http.StatusOK}},
		{"revoke another client's", "/revoke", url.Values{"token": {pubTok.RefreshToken}}, basic, answer{Status: http.StatusOK}},
		{"revoke without a token", "/revoke", url.Values{"client_id": {pub.ClientID}}, nil,
			answer{http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "token is required"}}},
		{"revoke anonymously", "/revoke", url.Values{"token": {pubTok.RefreshToken}}, nil,
			answer{http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "client authentication is required"}}},
		{"introspect own", "/introspect", url.Values{"token": {confTok.AccessToken}}, basic, answer{http.StatusOK, map[string]any{
			"active": true, "scope": "notes:read", "client_id": conf.ClientID, "sub": "test:u1", "aud": testResource, "iss": testIssuer,
			"exp": float64(e.clock.Now().Add(envATLifetime).Unix()), "token_type": "Bearer"}}},
		{"introspect another client's", "/introspect", url.Values{"token": {pubTok.AccessToken}}, basic, answer{http.StatusOK, map[string]any{"active": false}}},
		{"introspect without a token", "/introspect", url.Values{}, basic,
			answer{http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "token is required"}}},
		{"introspect as a public client", "/introspect", url.Values{"token": {pubTok.AccessToken}, "client_id": {pub.ClientID}}, nil,
			answer{http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "introspection needs a confidential client"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.form(tt.path, tt.form, nil, tt.hdr)
			got := answer{Status: rec.Code}
			if rec.Body.Len() > 0 {
				if err := json.Unmarshal(rec.Body.Bytes(), &got.Body); err != nil {
					t.Fatalf("body %q: %v", rec.Body, err)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.path, diff)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
	// None of that revoked anything.
	for name, at := range map[string]string{"confidential": confTok.AccessToken, "public": pubTok.AccessToken} {
		if !e.live(t, at) {
			t.Errorf("the %s client's grant was revoked", name)
		}
	}
	// The owner revokes through the endpoint.
	if rec := e.form("/revoke", url.Values{"token": {pubTok.AccessToken}, "token_type_hint": {"access_token"}, "client_id": {pub.ClientID}}, nil, nil); rec.Code != http.StatusOK {
		t.Fatalf("revoke own: %d %s", rec.Code, rec.Body)
	}
	if e.live(t, pubTok.AccessToken) {
		t.Error("revoked through /revoke, the access token still verifies")
	}
}

func basicAuth(id, secret string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}
