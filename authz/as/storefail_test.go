package as_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
)

var errStoreDown = errors.New("store: connection refused")

// TestExchangeStoreFailures: a store failure is no OAuth error (the
// endpoint turns it into a retryable 503), and a refresh that failed for
// the store's sake can be retried with the same token; a store's "not
// found" or "revoked" is invalid_grant.
func TestExchangeStoreFailures(t *testing.T) {
	down := "not an OAuth error: " + errStoreDown.Error()
	for _, tt := range []struct {
		name    string
		refresh bool
		fail    string
		err     error
		// replay redeems the code twice (the second fails).
		replay       bool
		grantRevoked bool
		staleCodes   bool
		want         string
		// retry: the same request succeeds once the store is back.
		retry bool
	}{
		{name: "code: TakeCode fails", fail: "TakeCode", want: down, retry: true},
		{name: "code: IssueRefresh fails", fail: "IssueRefresh", want: down},
		{name: "code: RevokeGrant fails on a replay", replay: true, fail: "RevokeGrant", want: down},
		{name: "code: the store hands out an expired code", staleCodes: true, want: "invalid_grant"},
		{name: "refresh: LookupRefresh fails", refresh: true, fail: "LookupRefresh", want: down, retry: true},
		{name: "refresh: GetGrant fails", refresh: true, fail: "GetGrant", want: down, retry: true},
		{name: "refresh: the grant is gone", refresh: true, fail: "GetGrant", err: authz.ErrNotFound, want: "invalid_grant", retry: true},
		{name: "refresh: GrantRevoked fails", refresh: true, fail: "GrantRevoked", want: down, retry: true},
		{name: "refresh: the grant is revoked", refresh: true, grantRevoked: true, want: "invalid_grant", retry: true},
		{name: "refresh: RotateRefresh fails", refresh: true, fail: "RotateRefresh", want: down, retry: true},
		{name: "refresh: the family died meanwhile", refresh: true, fail: "RotateRefresh", err: authz.ErrNotFound, want: "invalid_grant", retry: true},
		// The rotation happened: the retry is a retry within grace.
		{name: "refresh: PutGrant fails after the rotation", refresh: true, fail: "PutGrant", want: down, retry: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none")
			var req *as.TokenRequest
			if tt.refresh {
				req = &as.TokenRequest{Client: c, GrantType: "refresh_token", RefreshToken: e.login(t, c, "notes:read").RefreshToken}
			} else {
				req = &as.TokenRequest{Client: c, GrantType: "authorization_code", Code: e.code(t, c, "notes:read"), CodeVerifier: testVerifier}
			}
			if tt.replay {
				if _, err := e.srv.Exchange(t.Context(), req); err != nil {
					t.Fatal(err)
				}
			}
			err := tt.err
			if err == nil {
				err = errStoreDown
			}
			if tt.fail != "" {
				e.faults.fail = map[string]error{tt.fail: err}
			}
			e.faults.grantRevoked, e.faults.staleCodes = tt.grantRevoked, tt.staleCodes
			if _, err := e.srv.Exchange(t.Context(), req); oauthCode(err) != tt.want {
				t.Fatalf("Exchange: %q, want %q", oauthCode(err), tt.want)
			}
			e.faults.fail, e.faults.grantRevoked, e.faults.staleCodes = nil, false, false
			if _, err := e.srv.Exchange(t.Context(), req); (err == nil) != tt.retry {
				t.Errorf("the same request once the store is back: %v, want success %v", err, tt.retry)
			}
		})
	}
}

// TestTokenEndpointStoreFailure: /token answers a store failure with a
// 503 temporarily_unavailable and Retry-After, logs it, and neither the
// answer nor the log holds the code or the client's credentials.
func TestTokenEndpointStoreFailure(t *testing.T) {
	e := newEnv(t)
	c, secret := e.register(t, "client_secret_post")
	code := e.code(t, c, "notes:read")
	e.faults.fail = map[string]error{"TakeCode": errStoreDown}
	rec := e.form("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {testVerifier},
		"client_id": {c.ClientID}, "client_secret": {secret}}, nil, nil)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	got := []any{rec.Code, rec.Header().Get("Retry-After"), body["error"]}
	if diff := cmp.Diff([]any{http.StatusServiceUnavailable, "5", "temporarily_unavailable"}, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, errStoreDown.Error()) {
		t.Errorf("the failure was not logged: %s", logs)
	}
	for name, s := range map[string]string{"code": code, "verifier": testVerifier, "secret": secret} {
		if strings.Contains(logs, s) || strings.Contains(rec.Body.String(), s) {
			t.Errorf("the %s leaked: log %s, body %s", name, logs, rec.Body)
		}
	}
}

// TestRevokeIntrospectStoreFailures: revocation and introspection report
// a store failure instead of a false "done" or "inactive", and the
// endpoints answer 503.
func TestRevokeIntrospectStoreFailures(t *testing.T) {
	for _, tt := range []struct {
		name string
		fail string
		// introspect, or revoke the refresh (or access) token.
		introspect bool
		access     bool
	}{
		{name: "revoke: LookupRefresh fails", fail: "LookupRefresh"},
		{name: "revoke: RevokeGrant fails", fail: "RevokeGrant"},
		{name: "revoke an access token: GrantRevoked fails", fail: "GrantRevoked", access: true},
		{name: "revoke an access token: RevokeGrant fails", fail: "RevokeGrant", access: true},
		{name: "introspect: GrantRevoked fails", fail: "GrantRevoked", introspect: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, secret := e.register(t, "client_secret_post")
			tok := e.login(t, c, "notes:read")
			token := tok.RefreshToken
			if tt.access || tt.introspect {
				token = tok.AccessToken
			}
			e.faults.fail = map[string]error{tt.fail: errStoreDown}
			var err error
			path := "/revoke"
			if tt.introspect {
				path = "/introspect"
				_, err = e.srv.Introspect(t.Context(), c, token)
			} else {
				err = e.srv.Revoke(t.Context(), c, token, "")
			}
			if err == nil {
				t.Fatal("no error with the store down")
			}
			var oe *authz.Error
			if errors.As(err, &oe) {
				t.Errorf("an OAuth error %v for a store failure", oe)
			}
			rec := e.form(path, url.Values{"token": {token}, "client_id": {c.ClientID}, "client_secret": {secret}}, nil, nil)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
				t.Errorf("%s: %d (Retry-After %q), want 503 with Retry-After", path, rec.Code, rec.Header().Get("Retry-After"))
			}
		})
	}
}

// TestAuthorizeCallbackStoreFailures: on the browser's side, a store
// failure is a 503 page (never a redirect, never a code); remembering
// the approval is the one write whose failure is only logged.
func TestAuthorizeCallbackStoreFailures(t *testing.T) {
	for _, tt := range []struct {
		name string
		fail string
		// step is where the failure hits: "authorize", "consent" or
		// "callback".
		step string
		// ok: the sign-in completes all the same.
		ok bool
	}{
		{name: "PutPending at /authorize", fail: "PutPending", step: "authorize"},
		{name: "GetPending at the consent", fail: "GetPending", step: "consent"},
		{name: "PutPending at the consent", fail: "PutPending", step: "consent"},
		{name: "TakePending at the callback", fail: "TakePending", step: "callback"},
		{name: "PutGrant at the callback", fail: "PutGrant", step: "callback"},
		{name: "PutCode at the callback", fail: "PutCode", step: "callback"},
		{name: "remembering the approval", fail: "Approve", step: "callback", ok: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none")
			fail := func(step string) {
				if step == tt.step {
					e.faults.fail = map[string]error{tt.fail: errStoreDown}
				}
			}
			check := func(rec interface{ Result() *http.Response }, wantStatus int) {
				t.Helper()
				res := rec.Result()
				if res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Location") == "" && !tt.ok {
					return
				}
				if res.StatusCode != wantStatus {
					t.Fatalf("%s: %d to %q, want %d", tt.step, res.StatusCode, res.Header.Get("Location"), wantStatus)
				}
			}
			q := url.Values{"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {testRedirect},
				"code_challenge": {challenge(testVerifier)}, "code_challenge_method": {"S256"}, "state": {"s1"}, "scope": {"notes:read"}}
			fail("authorize")
			rec := e.get("/authorize?"+q.Encode(), nil, map[string]string{"Sec-Fetch-Site": "none"})
			if tt.step == "authorize" {
				check(rec, -1)
				return
			}
			browser := cookieNamed(t, rec, "__Host-remotemcp-browser")
			tx, csrf := txRE.FindStringSubmatch(rec.Body.String()), csrfRE.FindStringSubmatch(rec.Body.String())
			if tx == nil || csrf == nil {
				t.Fatalf("/authorize: %d, no consent form", rec.Code)
			}
			fail("consent")
			rec = e.form("/authorize/consent", post(tx[1], csrf[1], "approve"), []*http.Cookie{browser}, map[string]string{"Sec-Fetch-Site": "same-origin"})
			if tt.step == "consent" {
				check(rec, -1)
				return
			}
			state := upstreamState(t, rec.Header().Get("Location"))
			fail("callback")
			rec = e.get("/callback?"+url.Values{"state": {state}, "code": {"c"}}.Encode(), []*http.Cookie{browser}, nil)
			want := -1
			if tt.ok {
				want = http.StatusFound
			}
			check(rec, want)
			if loc := rec.Header().Get("Location"); !tt.ok && loc != "" {
				t.Errorf("redirect to %q on a store failure", loc)
			}
			if tt.ok && !strings.Contains(e.logs.String(), fmt.Sprint(errStoreDown)) {
				t.Errorf("the failure to remember the approval was not logged: %s", e.logs)
			}
		})
	}
}
