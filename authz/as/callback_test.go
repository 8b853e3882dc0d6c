package as_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/oauth2"

	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// TestCallback: our callback from the upstream. Its state must be one we
// sent, for an approved authorization, in the browser that approved it, in
// time, and it is spent whatever happens; the upstream's answer then
// decides between a code for the client and an error sent back to it.
func TestCallback(t *testing.T) {
	const browser = "browser-1"
	invalid := outcome{Page: http.StatusBadRequest, Title: "Invalid sign-in response"}
	expired := outcome{Page: http.StatusBadRequest, Title: "This sign-in expired"}
	back := func(code string) outcome {
		return outcome{Error: code, State: "client-state", RedirectURI: testRedirect}
	}
	for _, tt := range []struct {
		name string
		// query edits the callback's query (state set to the right one,
		// code to "upstream-code").
		query    func(q url.Values, tx string)
		browser  string
		approve  bool
		advance  time.Duration
		exchange error
		identity error
		subject  string
		want     outcome
		// untouched: the state named no sign-in, so the real one is not
		// spent.
		untouched bool
	}{
		{name: "success", approve: true},
		{name: "just in time", approve: true, advance: envPendingTTL - time.Second},

		{name: "no state", approve: true, query: func(q url.Values, _ string) { q.Del("state") }, want: invalid, untouched: true},
		{name: "state without a secret", approve: true, query: func(q url.Values, tx string) { q.Set("state", tx) }, want: invalid, untouched: true},
		{name: "state with an empty secret", approve: true, query: func(q url.Values, tx string) { q.Set("state", tx+".") }, want: invalid, untouched: true},
		{name: "state with an empty id", approve: true, query: func(q url.Values, _ string) { q.Set("state", ".secret") }, want: invalid, untouched: true},
		{name: "state of no sign-in", approve: true, query: func(q url.Values, _ string) { q.Set("state", "no-such-tx.secret") }, want: expired, untouched: true},
		{name: "wrong secret", approve: true, query: func(q url.Values, tx string) { q.Set("state", tx+".guess") }, want: invalid},
		{name: "not approved", query: func(q url.Values, tx string) { q.Set("state", tx+".guess") }, want: invalid},
		{name: "another browser", approve: true, browser: "browser-2", want: outcome{Page: http.StatusForbidden, Title: "Wrong browser"}},
		{name: "no browser", approve: true, browser: "-", want: outcome{Page: http.StatusForbidden, Title: "Wrong browser"}},
		{name: "too late", approve: true, advance: envPendingTTL, want: expired},

		{name: "the user cancelled upstream", approve: true, query: func(q url.Values, _ string) { q.Del("code"); q.Set("error", "access_denied") },
			want: back("access_denied")},
		{name: "the upstream failed", approve: true, query: func(q url.Values, _ string) { q.Del("code"); q.Set("error", "server_error") },
			want: back("server_error")},
		{name: "an error and a code", approve: true, query: func(q url.Values, _ string) { q.Set("error", "invalid_scope") }, want: back("server_error")},
		{name: "no code", approve: true, query: func(q url.Values, _ string) { q.Del("code") }, want: back("server_error")},
		{name: "upstream unavailable", approve: true, exchange: fmt.Errorf("token: %w", upstream.ErrUnavailable), want: back("temporarily_unavailable")},
		{name: "upstream timeout", approve: true, exchange: context.DeadlineExceeded, want: back("temporarily_unavailable")},
		{name: "upstream refuses the code", approve: true, exchange: errors.New("invalid_grant"), want: back("server_error")},
		{name: "userinfo unavailable", approve: true, identity: upstream.ErrUnavailable, want: back("temporarily_unavailable")},
		{name: "userinfo fails", approve: true, identity: errors.New("401"), want: back("server_error")},
		{name: "no upstream subject", approve: true, subject: "-", want: back("server_error")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none")
			e.up.exchangeErr, e.up.identityErr = tt.exchange, tt.identity
			switch tt.subject {
			case "-":
				e.up.subject = ""
			case "":
			default:
				e.up.subject = tt.subject
			}
			var p *as.PendingAuth
			var state string
			if tt.approve {
				p, state = e.approved(t, c, "notes:read", browser)
			} else {
				var err error
				if p, _, err = e.srv.Authorize(t.Context(), authReq(c, "notes:read"), browser); err != nil {
					t.Fatal(err)
				}
			}
			q := url.Values{"state": {state}, "code": {"upstream-code"}}
			if tt.query != nil {
				tt.query(q, p.ID)
			}
			cbBrowser := browser
			switch tt.browser {
			case "-":
				cbBrowser = ""
			case "":
			default:
				cbBrowser = tt.browser
			}
			e.clock.Advance(tt.advance)
			res, err := e.srv.Callback(t.Context(), q, cbBrowser)
			if diff := cmp.Diff(tt.want, outcomeOf(err)); diff != "" {
				t.Fatalf("Callback error (-want +got):\n%s", diff)
			}
			if err != nil && len(e.vault.m) != 0 {
				t.Errorf("a failed callback stored upstream tokens: %v", e.vault.m)
			}
			// Spent, whatever happened, once it named a sign-in: the
			// right state in the right browser no longer works.
			if tt.approve {
				e.up.exchangeErr, e.up.identityErr, e.up.subject = nil, nil, "u1"
				_, again := e.srv.Callback(t.Context(), url.Values{"state": {state}, "code": {"upstream-code"}}, browser)
				want := expired
				if tt.untouched {
					want = outcome{}
				}
				if diff := cmp.Diff(want, outcomeOf(again)); diff != "" {
					t.Errorf("the state again (-want +got):\n%s", diff)
				}
			}
			if err != nil {
				return
			}
			want := &as.CallbackResult{RedirectURI: testRedirect, State: "client-state", Subject: "test:u1"}
			if diff := cmp.Diff(want, res, cmpopts.IgnoreFields(as.CallbackResult{}, "Code")); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			// The code is redeemable, and its grant is recorded with the
			// upstream tokens in the vault and the approval remembered.
			tok, err := e.srv.Exchange(t.Context(), &as.TokenRequest{Client: c, GrantType: "authorization_code", Code: res.Code, CodeVerifier: testVerifier})
			if err != nil {
				t.Fatalf("the callback's code: %v", err)
			}
			gid := e.grantOf(t, tok.AccessToken)
			g, err := e.st.GetGrant(t.Context(), gid)
			if err != nil {
				t.Fatal(err)
			}
			wantGrant := &as.Grant{ID: gid, Subject: "test:u1", ClientID: c.ClientID, Scopes: []string{"notes:read"}, Resource: testResource,
				CreatedAt: e.clock.Now(), Upstream: "u1"}
			if diff := cmp.Diff(wantGrant, g); diff != "" {
				t.Errorf("grant (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]*oauth2.Token{gid: {AccessToken: "upstream-upstream-code", TokenType: "Bearer"}}, e.vault.m,
				cmpopts.IgnoreUnexported(oauth2.Token{})); diff != "" {
				t.Errorf("vault (-want +got):\n%s", diff)
			}
			scopes, err := e.st.Approved(t.Context(), "test:u1", c.ClientID, "http://127.0.0.1/cb") // keyed without the loopback port
			if err != nil || !cmp.Equal(scopes, []string{"notes:read"}) {
				t.Errorf("remembered approval: %v, %v", scopes, err)
			}
		})
	}
}

// TestCallbackApprovalsGrow: a remembered approval grows with each
// approval (a step-up), never shrinks.
func TestCallbackApprovalsGrow(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	for i, tt := range []struct {
		scope string
		want  []string
	}{
		{"notes:read", []string{"notes:read"}},
		{"notes:write", []string{"notes:write", "notes:read"}},
		{"notes:read", []string{"notes:read", "notes:write"}},
	} {
		e.code(t, c, tt.scope)
		got, err := e.st.Approved(t.Context(), "test:u1", c.ClientID, "http://127.0.0.1/cb") // keyed without the loopback port
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("after approval %d of %q (-want +got):\n%s", i, tt.scope, diff)
		}
	}
}
