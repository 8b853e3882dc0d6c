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

// TestAuthorize: Authorize refuses on a page, never by a redirect: before
// the user has seen the consent page, a redirect to even a registered URI
// would be an open redirector (anyone can register one); the page names
// the OAuth error. A valid request is recorded as pending, bound to the
// browser, with its scopes narrowed to those we offer.
func TestAuthorize(t *testing.T) {
	const otherRedirect = "http://127.0.0.1:9/other"
	unknownApp := outcome{Page: http.StatusBadRequest, Title: "Unknown app"}
	refused := func(code string) outcome {
		return outcome{Page: http.StatusBadRequest, Title: "The app sent an invalid sign-in request", Error: code}
	}
	for _, tt := range []struct {
		name string
		// two registers the client with two redirect URIs.
		two    bool
		change func(r *as.AuthorizeRequest)
		want   outcome
		// scopes are the pending authorization's, on success.
		scopes []string
	}{
		{name: "valid", scopes: []string{"notes:read"}},
		{name: "no scope means every scope offered", change: func(r *as.AuthorizeRequest) { r.Scope = "" }, scopes: []string{"notes:read", "notes:write"}},
		{name: "scopes we do not offer are dropped", change: func(r *as.AuthorizeRequest) { r.Scope = "notes:write admin notes:read" }, scopes: []string{"notes:read", "notes:write"}},
		{name: "no resource", change: func(r *as.AuthorizeRequest) { r.Resource = nil }, scopes: []string{"notes:read"}},
		{name: "no redirect URI, one registered", change: func(r *as.AuthorizeRequest) { r.RedirectURI = "" }, scopes: []string{"notes:read"}},
		{name: "loopback redirect on another port", change: func(r *as.AuthorizeRequest) { r.RedirectURI = "http://127.0.0.1:5555/cb" }, scopes: []string{"notes:read"}},

		{name: "no client", change: func(r *as.AuthorizeRequest) { r.ClientID = "" }, want: unknownApp},
		{name: "unknown client", change: func(r *as.AuthorizeRequest) { r.ClientID = "no-such-client" }, want: unknownApp},
		{name: "metadata document client, CIMD off", change: func(r *as.AuthorizeRequest) { r.ClientID = "https://app.example/client.json" }, want: unknownApp},
		{name: "unregistered redirect URI", change: func(r *as.AuthorizeRequest) { r.RedirectURI = "https://evil.example/cb" },
			want: outcome{Page: http.StatusBadRequest, Title: "Redirect URI not registered"}},
		{name: "no redirect URI, two registered", two: true, change: func(r *as.AuthorizeRequest) { r.RedirectURI = "" },
			want: outcome{Page: http.StatusBadRequest, Title: "Missing redirect URI"}},
		// Errors after the redirect URI is known are pages too, even a
		// bad response_type.
		{name: "unregistered redirect URI and a bad response type", change: func(r *as.AuthorizeRequest) { r.RedirectURI = "https://evil.example/cb"; r.ResponseType = "token" },
			want: outcome{Page: http.StatusBadRequest, Title: "Redirect URI not registered"}},
		{name: "response type token", change: func(r *as.AuthorizeRequest) { r.ResponseType = "token" }, want: refused("unsupported_response_type")},
		{name: "no response type", change: func(r *as.AuthorizeRequest) { r.ResponseType = "" }, want: refused("unsupported_response_type")},
		{name: "no code challenge", change: func(r *as.AuthorizeRequest) { r.CodeChallenge = ""; r.CodeChallengeMethod = "" }, want: refused("invalid_request")},
		{name: "plain PKCE", change: func(r *as.AuthorizeRequest) { r.CodeChallengeMethod = "plain" }, want: refused("invalid_request")},
		{name: "no PKCE method", change: func(r *as.AuthorizeRequest) { r.CodeChallengeMethod = "" }, want: refused("invalid_request")},
		{name: "short challenge", change: func(r *as.AuthorizeRequest) { r.CodeChallenge = "abc" }, want: refused("invalid_request")},
		{name: "another resource", change: func(r *as.AuthorizeRequest) { r.Resource = []string{"https://evil.example/mcp"} }, want: refused("invalid_target")},
		{name: "two resources", change: func(r *as.AuthorizeRequest) { r.Resource = []string{testResource, testResource} }, want: refused("invalid_target")},
		{name: "only scopes we do not offer", change: func(r *as.AuthorizeRequest) { r.Scope = "admin" }, want: refused("invalid_scope")},
		{name: "no state", change: func(r *as.AuthorizeRequest) { r.State = ""; r.Scope = "admin" }, want: refused("invalid_scope")},
		{name: "another registered redirect URI", two: true, change: func(r *as.AuthorizeRequest) { r.RedirectURI = otherRedirect; r.Scope = "admin" },
			want: refused("invalid_scope")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			redirects := []string{testRedirect}
			if tt.two {
				redirects = append(redirects, otherRedirect)
			}
			c, _ := e.register(t, "none", redirects...)
			req := authReq(c, "notes:read")
			if tt.change != nil {
				tt.change(req)
			}
			p, gotClient, err := e.srv.Authorize(t.Context(), req, "browser-1")
			if diff := cmp.Diff(tt.want, outcomeOf(err)); diff != "" {
				t.Fatalf("Authorize error (-want +got):\n%s", diff)
			}
			if err != nil {
				if p != nil || gotClient != nil {
					t.Errorf("Authorize failed but returned %v, %v", p, gotClient)
				}
				return
			}
			redirect := req.RedirectURI
			if redirect == "" {
				redirect = testRedirect
			}
			want := &as.PendingAuth{ID: p.ID, ClientID: c.ClientID, RedirectURI: redirect, State: "client-state",
				CodeChallenge: challenge(testVerifier), Resource: testResource, Scopes: tt.scopes, CreatedAt: e.clock.Now(),
				Browser: as.HashToken("browser-1")}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("pending (-want +got):\n%s", diff)
			}
			if gotClient.ClientID != c.ClientID {
				t.Errorf("client %q, want %q", gotClient.ClientID, c.ClientID)
			}
			stored, err := e.st.GetPending(t.Context(), p.ID)
			if err != nil {
				t.Fatalf("the pending authorization was not stored: %v", err)
			}
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("stored pending (-want +got):\n%s", diff)
			}
			// It lives PendingTTL.
			e.clock.Advance(envPendingTTL)
			if _, err := e.st.GetPending(t.Context(), p.ID); err == nil {
				t.Error("the pending authorization outlived PendingTTL")
			}
		})
	}
}

// TestApproveExpired: an approval after PendingTTL is refused and sends
// nobody upstream.
func TestApproveExpired(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	p, _, err := e.srv.Authorize(t.Context(), authReq(c, "notes:read"), "browser-1")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(envPendingTTL)
	if u, err := e.srv.Approve(t.Context(), p, ""); err == nil || u != "" {
		t.Errorf("Approve after PendingTTL: %q, %v; want an error", u, err)
	}
}

// TestAuthorizeRemembered: after a sign-in, the same user (signed user
// cookie) going through /authorize again for the same client, redirect
// URI and no more scopes goes straight upstream; anything else gets the
// consent page.
func TestAuthorizeRemembered(t *testing.T) {
	direct := map[string]string{"Sec-Fetch-Site": "none"}
	for _, tt := range []struct {
		name    string
		scope   string
		hdr     map[string]string
		cookies func(browser, user *http.Cookie) []*http.Cookie
		advance time.Duration
		// redirect, if set, is the redirect URI of the second request.
		redirect string
		// remembered: the answer is a redirect upstream, not the page.
		remembered bool
	}{
		{name: "same user, opened by the app", remembered: true},
		{name: "same user, from our own page", hdr: map[string]string{"Sec-Fetch-Site": "same-origin"}, remembered: true},
		{name: "fewer scopes", scope: "notes:read", remembered: true},
		// RFC 8252 §7.3: a native client listens on a new port each time.
		{name: "another loopback port", redirect: "http://127.0.0.1:49152/cb", remembered: true},
		{name: "more scopes", scope: "notes:read notes:write"},
		{name: "started by another site", hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{name: "no Sec-Fetch-Site", hdr: map[string]string{}},
		{name: "no user cookie", cookies: func(b, _ *http.Cookie) []*http.Cookie { return []*http.Cookie{b} }},
		{name: "no cookie at all", cookies: func(_, _ *http.Cookie) []*http.Cookie { return nil }},
		{name: "a new browser with the user cookie", cookies: func(_, u *http.Cookie) []*http.Cookie { return []*http.Cookie{u} }, remembered: true},
		{name: "tampered user cookie", cookies: func(b, u *http.Cookie) []*http.Cookie {
			forged := *u
			sub, rest, _ := strings.Cut(u.Value, ".")
			forged.Value = sub + "A." + rest
			return []*http.Cookie{b, &forged}
		}},
		{name: "user cookie past its age", advance: 30*24*time.Hour + time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none")
			q := url.Values{"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {testRedirect},
				"code_challenge": {challenge(testVerifier)}, "code_challenge_method": {"S256"}, "state": {"s1"},
				"resource": {testResource}, "scope": {"notes:read"}}
			browser, user := e.signIn(t, q)
			// The client is used at once and again halfway (so that its
			// registration outlives the user cookie).
			for i, d := range []time.Duration{0, tt.advance / 2} {
				e.clock.Advance(d)
				if err := e.st.TouchClient(t.Context(), c.ClientID, 30*24*time.Hour); err != nil {
					t.Fatalf("touch %d: %v", i, err)
				}
			}
			e.clock.Advance(tt.advance - tt.advance/2)
			if tt.scope != "" {
				q.Set("scope", tt.scope)
			}
			if tt.redirect != "" {
				q.Set("redirect_uri", tt.redirect)
			}
			cookies := []*http.Cookie{browser, user}
			if tt.cookies != nil {
				cookies = tt.cookies(browser, user)
			}
			hdr := direct
			if tt.hdr != nil {
				hdr = tt.hdr
			}
			rec := e.get("/authorize?"+q.Encode(), cookies, hdr)
			switch {
			case tt.remembered && rec.Code == http.StatusFound && strings.HasPrefix(rec.Header().Get("Location"), "https://upstream.test/"):
			case !tt.remembered && rec.Code == http.StatusOK && csrfRE.MatchString(rec.Body.String()):
			default:
				t.Errorf("/authorize: %d to %q; want remembered %v", rec.Code, rec.Header().Get("Location"), tt.remembered)
			}
		})
	}
}

// TestAuthorizeRememberedOtherAccount: a remembered approval is for the
// user who gave it: signing in upstream as someone else ends on a page,
// with no code.
func TestAuthorizeRememberedOtherAccount(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	q := url.Values{"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {testRedirect},
		"code_challenge": {challenge(testVerifier)}, "code_challenge_method": {"S256"}, "state": {"s1"}, "scope": {"notes:read"}}
	browser, user := e.signIn(t, q)
	rec := e.get("/authorize?"+q.Encode(), []*http.Cookie{browser, user}, map[string]string{"Sec-Fetch-Site": "none"})
	if rec.Code != http.StatusFound {
		t.Fatalf("/authorize: %d, want the remembered approval's redirect", rec.Code)
	}
	state := upstreamState(t, rec.Header().Get("Location"))
	e.up.subject = "u2"
	_, err := e.srv.Callback(t.Context(), url.Values{"state": {state}, "code": {"c"}}, browserNonce(browser))
	if diff := cmp.Diff(outcome{Page: http.StatusForbidden, Title: "Signed in as someone else"}, outcomeOf(err)); diff != "" {
		t.Errorf("callback (-want +got):\n%s", diff)
	}
}

// signIn goes through /authorize, the consent page and the callback in
// one browser; it returns the browser and user cookies.
func (e *env) signIn(t *testing.T, q url.Values) (browser, user *http.Cookie) {
	t.Helper()
	rec := e.get("/authorize?"+q.Encode(), nil, map[string]string{"Sec-Fetch-Site": "none"})
	browser = cookieNamed(t, rec, "__Host-remotemcp-browser")
	tx, csrf := txRE.FindStringSubmatch(rec.Body.String()), csrfRE.FindStringSubmatch(rec.Body.String())
	if rec.Code != http.StatusOK || tx == nil || csrf == nil {
		t.Fatalf("/authorize: %d, no consent form", rec.Code)
	}
	rec = e.form("/authorize/consent", url.Values{"tx": {tx[1]}, "csrf": {csrf[1]}, "decision": {"approve"}},
		[]*http.Cookie{browser}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("consent: %d", rec.Code)
	}
	state := upstreamState(t, rec.Header().Get("Location"))
	rec = e.get("/callback?"+url.Values{"state": {state}, "code": {"c"}}.Encode(), []*http.Cookie{browser}, nil)
	if rec.Code != http.StatusFound {
		t.Fatalf("callback: %d", rec.Code)
	}
	return browser, cookieNamed(t, rec, "__Host-remotemcp-user")
}

func cookieNamed(t *testing.T, rec interface{ Result() *http.Response }, name string) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no cookie %s", name)
	return nil
}

// browserNonce is the nonce in a browser cookie (before its MAC).
func browserNonce(c *http.Cookie) string {
	n, _, _ := strings.Cut(c.Value, ".")
	return n
}

// TestAuthorizeNoOpenRedirect: anyone can register a client whose redirect
// URI is their own site, so GET /authorize with a bad parameter must not
// answer with a redirect there, which needs no user action (RFC 9700
// §4.11.2): it answers an error page on our origin, naming the OAuth
// error, whether or not the user has a remembered approval.
func TestAuthorizeNoOpenRedirect(t *testing.T) {
	const landing = "https://evil.example/landing"
	valid := func(c *as.Client) url.Values {
		return url.Values{"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {landing},
			"code_challenge": {challenge(testVerifier)}, "code_challenge_method": {"S256"}, "state": {"s1"},
			"resource": {testResource}, "scope": {"notes:read"}}
	}
	for _, tt := range []struct {
		name   string
		change func(q url.Values)
		code   string
	}{
		{"bad response type", func(q url.Values) { q.Set("response_type", "x") }, "unsupported_response_type"},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"another resource", func(q url.Values) { q.Set("resource", "https://evil.example/mcp") }, "invalid_target"},
		{"only scopes we do not offer", func(q url.Values) { q.Set("scope", "admin") }, "invalid_scope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none", landing)
			q := valid(c)
			tt.change(q)
			for _, hdr := range []map[string]string{nil, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "none"}} {
				rec := e.get("/authorize?"+q.Encode(), nil, hdr)
				if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
					t.Fatalf("Sec-Fetch-Site %v: %d to %q, want an error page 400 without Location", hdr, rec.Code, rec.Header().Get("Location"))
				}
				if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Errorf("Content-Type %q, want an HTML page", ct)
				}
				body := rec.Body.String()
				if !strings.Contains(body, tt.code) {
					t.Errorf("the page does not name the error %s:\n%s", tt.code, body)
				}
				if strings.Contains(body, "evil.example/landing") {
					t.Errorf("the page links to the client's redirect URI:\n%s", body)
				}
			}
		})
	}
}

// TestApproveSealsUpstreamVerifier: the pending record keeps our PKCE
// verifier towards the upstream only sealed with the vault's key (with the
// upstream code it would redeem the sign-in, and the record sits in the
// store for minutes); the callback opens it and exchanges the code with
// the verifier sent upstream. A sealed verifier moved to another pending
// sign-in does not open: the callback answers server_error.
func TestApproveSealsUpstreamVerifier(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	p, state := e.approved(t, c, "notes:read", "browser-1")
	sent := e.up.sent
	if sent == "" {
		t.Fatal("no verifier was sent upstream")
	}
	stored, err := e.st.GetPending(t.Context(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), sent) || stored.UpstreamVerifier == nil {
		t.Errorf("the stored pending record holds the upstream verifier in clear: %s", raw)
	}
	if _, err := e.srv.Callback(t.Context(), url.Values{"state": {state}, "code": {"c"}}, "browser-1"); err != nil {
		t.Fatalf("Callback: %v", err)
	}
	if e.up.got != sent {
		t.Errorf("the code was exchanged with verifier %q, want the one sent upstream %q", e.up.got, sent)
	}

	// Another sign-in's sealed verifier, copied into this one's record.
	p1, _ := e.approved(t, c, "notes:read", "browser-1")
	p2, state2 := e.approved(t, c, "notes:read", "browser-1")
	r1, err := e.st.GetPending(t.Context(), p1.ID)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.st.GetPending(t.Context(), p2.ID)
	if err != nil {
		t.Fatal(err)
	}
	r2.UpstreamVerifier = r1.UpstreamVerifier
	if err := e.st.PutPending(t.Context(), r2, time.Minute); err != nil {
		t.Fatal(err)
	}
	e.up.got = ""
	_, err = e.srv.Callback(t.Context(), url.Values{"state": {state2}, "code": {"c"}}, "browser-1")
	if got := outcomeOf(err); got.Error != "server_error" || got.RedirectURI != testRedirect {
		t.Errorf("callback with a moved sealed verifier: %+v, want server_error to the client", got)
	}
	if e.up.got != "" {
		t.Errorf("the code was exchanged with %q", e.up.got)
	}
}
