package as_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// consentPage is what a browser holds after GET /authorize: its browser
// cookie and the consent form's tx and csrf.
type consentPage struct {
	browser  *http.Cookie
	tx, csrf string
}

func (e *env) consentPage(t *testing.T, clientID string, browser *http.Cookie) consentPage {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {testRedirect},
		"code_challenge": {challenge(testVerifier)}, "code_challenge_method": {"S256"}, "state": {"s1"}, "scope": {"notes:read"}}
	var cookies []*http.Cookie
	if browser != nil {
		cookies = []*http.Cookie{browser}
	}
	rec := e.get("/authorize?"+q.Encode(), cookies, map[string]string{"Sec-Fetch-Site": "none"})
	tx, csrf := txRE.FindStringSubmatch(rec.Body.String()), csrfRE.FindStringSubmatch(rec.Body.String())
	if rec.Code != http.StatusOK || tx == nil || csrf == nil {
		t.Fatalf("/authorize: %d, no consent form", rec.Code)
	}
	if browser == nil {
		browser = cookieNamed(t, rec, "__Host-remotemcp-browser")
	}
	return consentPage{browser: browser, tx: tx[1], csrf: csrf[1]}
}

// TestConsent: the consent form's post. Allow goes upstream, Deny back to
// the client with access_denied; a post is refused unless it comes from
// our own page, in the browser that got it, with that page's CSRF token,
// in time.
func TestConsent(t *testing.T) {
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": testIssuer}
	type answer struct {
		Status int
		// To is where the answer redirects: "upstream", "client" or "".
		To    string
		Error string
		Title string
	}
	refused := answer{Status: http.StatusForbidden, Title: "This page expired"}
	for _, tt := range []struct {
		name string
		// form builds the post from the victim's page, another page of the
		// victim's and another browser's page.
		form    func(mine, mine2, other consentPage) url.Values
		cookies func(mine, other consentPage) []*http.Cookie
		hdr     map[string]string
		advance time.Duration
		want    answer
	}{
		{name: "allow", want: answer{Status: http.StatusSeeOther, To: "upstream"}},
		{name: "allow, Origin null under Sec-Fetch-Site same-origin", hdr: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "null"},
			want: answer{Status: http.StatusSeeOther, To: "upstream"}},
		{name: "allow, our Origin and no Sec-Fetch-Site", hdr: map[string]string{"Origin": testIssuer}, want: answer{Status: http.StatusSeeOther, To: "upstream"}},
		{name: "allow, neither header", hdr: map[string]string{}, want: answer{Status: http.StatusSeeOther, To: "upstream"}},
		{name: "deny", form: func(m, _, _ consentPage) url.Values { return post(m.tx, m.csrf, "deny") },
			want: answer{Status: http.StatusSeeOther, To: "client", Error: "access_denied"}},
		{name: "no decision", form: func(m, _, _ consentPage) url.Values { return post(m.tx, m.csrf, "") },
			want: answer{Status: http.StatusBadRequest, Title: "Invalid request"}},
		{name: "an unknown decision", form: func(m, _, _ consentPage) url.Values { return post(m.tx, m.csrf, "always") },
			want: answer{Status: http.StatusBadRequest, Title: "Invalid request"}},

		{name: "no csrf", form: func(m, _, _ consentPage) url.Values { return post(m.tx, "", "approve") }, want: refused},
		{name: "wrong csrf", form: func(m, _, _ consentPage) url.Values { return post(m.tx, strings.Repeat("A", len(m.csrf)), "approve") }, want: refused},
		{name: "another browser's csrf", form: func(m, _, o consentPage) url.Values { return post(m.tx, o.csrf, "approve") }, want: refused},
		{name: "the csrf of another tx", form: func(m, m2, _ consentPage) url.Values { return post(m2.tx, m.csrf, "approve") }, want: refused},
		{name: "no tx", form: func(m, _, _ consentPage) url.Values { return post("", m.csrf, "approve") }, want: refused},
		{name: "another browser's cookie", cookies: func(_, o consentPage) []*http.Cookie { return []*http.Cookie{o.browser} }, want: refused},
		{name: "another browser posts its own tx and csrf for my page", form: func(_, _, o consentPage) url.Values { return post(o.tx, o.csrf, "approve") }, want: refused},
		{name: "no cookie", cookies: func(_, _ consentPage) []*http.Cookie { return nil }, want: refused},
		{name: "forged cookie", cookies: func(m, _ consentPage) []*http.Cookie {
			c := *m.browser
			c.Value = browserNonce(m.browser) + ".forged"
			return []*http.Cookie{&c}
		}, want: refused},
		{name: "Origin of another site", hdr: map[string]string{"Origin": "https://evil.example"}, want: answer{Status: http.StatusForbidden, Title: "Request refused"}},
		{name: "Origin null", hdr: map[string]string{"Origin": "null"}, want: answer{Status: http.StatusForbidden, Title: "Request refused"}},
		{name: "Sec-Fetch-Site cross-site", hdr: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": testIssuer}, want: answer{Status: http.StatusForbidden, Title: "Request refused"}},
		{name: "Sec-Fetch-Site same-site", hdr: map[string]string{"Sec-Fetch-Site": "same-site", "Origin": testIssuer}, want: answer{Status: http.StatusForbidden, Title: "Request refused"}},
		{name: "too late", advance: envPendingTTL, want: answer{Status: http.StatusBadRequest, Title: "This page expired"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c, _ := e.register(t, "none")
			mine := e.consentPage(t, c.ClientID, nil)
			mine2 := e.consentPage(t, c.ClientID, mine.browser)
			other := e.consentPage(t, c.ClientID, nil)
			if mine.tx == mine2.tx || mine.csrf == mine2.csrf || mine.csrf == other.csrf || browserNonce(mine.browser) == browserNonce(other.browser) {
				t.Fatal("two pages share a tx, a csrf or a browser")
			}
			form := post(mine.tx, mine.csrf, "approve")
			if tt.form != nil {
				form = tt.form(mine, mine2, other)
			}
			cookies := []*http.Cookie{mine.browser}
			if tt.cookies != nil {
				cookies = tt.cookies(mine, other)
			}
			hdr := sameOrigin
			if tt.hdr != nil {
				hdr = tt.hdr
			}
			e.clock.Advance(tt.advance)
			rec := e.form("/authorize/consent", form, cookies, hdr)
			got := answer{Status: rec.Code}
			if loc, err := url.Parse(rec.Header().Get("Location")); err == nil && loc.String() != "" {
				switch {
				case loc.Host == "upstream.test":
					got.To = "upstream"
				case strings.HasPrefix(loc.String(), testRedirect+"?"):
					got.To = "client"
					got.Error = loc.Query().Get("error")
					if loc.Query().Get("state") != "s1" || loc.Query().Get("iss") != testIssuer {
						t.Errorf("deny redirect %s: want state and iss", loc)
					}
				default:
					got.To = loc.String()
				}
			}
			if m := titleRE.FindStringSubmatch(rec.Body.String()); m != nil && got.To == "" {
				got.Title = m[1]
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("consent (-want +got):\n%s", diff)
			}
			p, err := e.st.GetPending(t.Context(), mine.tx)
			switch {
			case tt.want.To == "upstream":
				if err != nil || !p.Approved {
					t.Errorf("after Allow: pending %+v, %v; want approved", p, err)
				}
			case tt.want.To == "client":
				if err == nil {
					t.Error("after Deny the pending authorization is still there")
				}
			case tt.advance == 0:
				if err != nil || p.Approved {
					t.Errorf("after a refused post: pending %+v, %v; want it there, unapproved", p, err)
				}
			}
		})
	}
}

// TestConsentAfterDeny: a denied authorization cannot be approved after
// all, and a repeated approval replaces the upstream state.
func TestConsentAfterDeny(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin"}
	denied := e.consentPage(t, c.ClientID, nil)
	if rec := e.form("/authorize/consent", post(denied.tx, denied.csrf, "deny"), []*http.Cookie{denied.browser}, sameOrigin); rec.Code != http.StatusSeeOther {
		t.Fatalf("deny: %d", rec.Code)
	}
	rec := e.form("/authorize/consent", post(denied.tx, denied.csrf, "approve"), []*http.Cookie{denied.browser}, sameOrigin)
	if m := titleRE.FindStringSubmatch(rec.Body.String()); rec.Code != http.StatusBadRequest || m == nil || m[1] != "This page expired" {
		t.Errorf("approve after deny: %d %q", rec.Code, m)
	}

	approved := e.consentPage(t, c.ClientID, nil)
	var states []string
	for range 2 {
		rec := e.form("/authorize/consent", post(approved.tx, approved.csrf, "approve"), []*http.Cookie{approved.browser}, sameOrigin)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("approve: %d", rec.Code)
		}
		states = append(states, upstreamState(t, rec.Header().Get("Location")))
	}
	if states[0] == states[1] {
		t.Fatal("two approvals sent the same state upstream")
	}
	// The superseded state does not complete the sign-in.
	if _, err := e.srv.Callback(t.Context(), url.Values{"state": {states[0]}, "code": {"c"}}, browserNonce(approved.browser)); err == nil {
		t.Error("the superseded upstream state completed the sign-in")
	}
}

// TestConsentUnreadableForm: a body past the form limit is refused on a
// page.
func TestConsentUnreadableForm(t *testing.T) {
	e := newEnv(t)
	rec := e.form("/authorize/consent", url.Values{"pad": {strings.Repeat("a", 10<<10)}}, nil, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if m := titleRE.FindStringSubmatch(rec.Body.String()); rec.Code != http.StatusBadRequest || m == nil || m[1] != "Invalid request" {
		t.Errorf("oversized form: %d %q", rec.Code, m)
	}
}

func post(tx, csrf, decision string) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"tx": tx, "csrf": csrf, "decision": decision} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

var titleRE = regexp.MustCompile(`<h1 id="title">([^<]*)</h1>`)
