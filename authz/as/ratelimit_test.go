package as_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/memstore"
)

// testClock is a settable clock for the limiter.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Date(2026, 7, 28, 0, 0, 0, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// limitedFixture is newFixture with rate limits; the fixture's own
// registration counts against 192.0.2.1 (httptest's RemoteAddr).
func limitedFixture(t *testing.T, rl as.RateLimits) *fixture {
	t.Helper()
	return newFixtureWith(t, func(o *as.Options) { o.RateLimits = rl })
}

func (f *fixture) register(remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(
		`{"client_name":"unit","redirect_uris":["`+testRedirect+`"],"token_endpoint_auth_method":"none"}`))
	r.RemoteAddr = remote
	return f.do(r, "application/json")
}

// token sends a refresh request that fails (400 invalid_grant for a known
// client, 401 invalid_client for another) unless it is rate limited.
func (f *fixture) token(remote, clientID string, basic bool) *httptest.ResponseRecorder {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}}
	if !basic {
		form.Set("client_id", clientID)
	}
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	r.RemoteAddr = remote
	if basic {
		r.SetBasicAuth(url.QueryEscape(clientID), "")
	}
	return f.do(r, "application/x-www-form-urlencoded")
}

// tokens signs in through the fixture's client and redeems the code.
func (f *fixture) tokens(t *testing.T) *as.TokenResponse {
	t.Helper()
	cookies, state := f.consentThenUpstream(t)
	cb := f.callback(cookies, url.Values{"state": {state}, "code": {"c"}})
	loc, _ := url.Parse(cb.Header().Get("Location"))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {testVerifier}, "client_id": {f.clientID}, "redirect_uri": {testRedirect}}
	rec := f.do(httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode())), "application/x-www-form-urlencoded")
	var tok as.TokenResponse
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &tok) != nil || tok.RefreshToken == "" {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	return &tok
}

func (f *fixture) authorize(remote, clientID string) *httptest.ResponseRecorder {
	q := f.authQuery()
	q.Set("client_id", clientID)
	r := httptest.NewRequest(http.MethodGet, "/authorize?"+q.Encode(), nil)
	r.RemoteAddr = remote
	return f.do(r, "")
}

// check429 checks the headers of a 429, and returns them.
func check429(t *testing.T, rec *httptest.ResponseRecorder, retryAfter string) http.Header {
	t.Helper()
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want 429; body %s", rec.Code, rec.Body)
	}
	h := rec.Header()
	if got := h.Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After = %q, want %q", got, retryAfter)
	}
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	return h
}

// checkOAuth429 checks a 429 with an OAuth JSON error that a browser-based
// client can read.
func checkOAuth429(t *testing.T, rec *httptest.ResponseRecorder, retryAfter string) {
	t.Helper()
	h := check429(t, rec, retryAfter)
	want := map[string]string{
		"Content-Type":                  "application/json",
		"Access-Control-Allow-Origin":   "*",
		"Access-Control-Expose-Headers": "Retry-After",
	}
	got := map[string]string{}
	for k := range want {
		got[k] = h.Get(k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != "temporarily_unavailable" {
		t.Errorf("body = %s, want error temporarily_unavailable", rec.Body)
	}
}

func TestRateLimitRegister(t *testing.T) {
	clock := newTestClock()
	f := limitedFixture(t, as.RateLimits{
		Limiter:  memstore.NewRateLimiter(&memstore.Options{Now: clock.Now}),
		Register: as.EndpointLimits{PerAddress: as.Limit{Requests: 2, Window: time.Minute}},
	})
	if rec := f.register("192.0.2.1:1234"); rec.Code != http.StatusCreated {
		t.Fatalf("second registration: %d %s", rec.Code, rec.Body)
	}
	checkOAuth429(t, f.register("192.0.2.1:1234"), "30")
	if rec := f.register("198.51.100.7:1"); rec.Code != http.StatusCreated {
		t.Errorf("registration from another address: %d, want 201", rec.Code)
	}
	clock.Advance(30 * time.Second)
	if rec := f.register("192.0.2.1:5678"); rec.Code != http.StatusCreated {
		t.Errorf("registration after Retry-After: %d, want 201", rec.Code)
	}
	checkOAuth429(t, f.register("192.0.2.1:1234"), "30")
}

func TestRateLimitToken(t *testing.T) {
	f := limitedFixture(t, as.RateLimits{
		Limiter: memstore.NewRateLimiter(nil),
		Token: as.EndpointLimits{
			PerAddress: as.Limit{Requests: 4, Window: time.Hour},
			PerClient:  as.Limit{Requests: 2, Window: time.Hour},
		},
	})
	const a, b, c = "192.0.2.10:1", "192.0.2.11:1", "192.0.2.12:1"
	for i, tt := range []struct {
		name     string
		remote   string
		clientID string
		basic    bool
		want     int
		retry    string // for a 429: 1800 per client and address (2 an hour), 900 per address (4 an hour)
	}{
		{"client at a 1/2, a 1/4", a, f.clientID, false, http.StatusBadRequest, ""},
		{"client at a 2/2, a 2/4", a, f.clientID, false, http.StatusBadRequest, ""},
		{"client over at a, asserted with Basic, a 3/4", a, f.clientID, true, http.StatusTooManyRequests, "1800"},
		// Another address has its own budget for the client.
		{"client at b 1/2, b 1/4", b, f.clientID, false, http.StatusBadRequest, ""},
		{"another client, a 4/4", a, "other", false, http.StatusUnauthorized, ""},
		{"address over", a, "fresh", false, http.StatusTooManyRequests, "900"},
		// The address refusal did not count against "fresh".
		{"fresh at c 1/2, c 1/4", c, "fresh", false, http.StatusUnauthorized, ""},
		{"fresh at c 2/2, c 2/4", c, "fresh", true, http.StatusUnauthorized, ""},
		{"fresh over at c", c, "fresh", false, http.StatusTooManyRequests, "1800"},
	} {
		rec := f.token(tt.remote, tt.clientID, tt.basic)
		if rec.Code != tt.want {
			t.Fatalf("request %d (%s): status %d, want %d; body %s", i, tt.name, rec.Code, tt.want, rec.Body)
		}
		if tt.want == http.StatusTooManyRequests {
			checkOAuth429(t, rec, tt.retry)
		}
	}
}

// TestRateLimitTokenNotSpentByOthers: client ids are not secret, so
// requests that name a client from other addresses, failing, must not
// spend the budget of the client itself: its refresh from its own address
// still goes through.
func TestRateLimitTokenNotSpentByOthers(t *testing.T) {
	f := limitedFixture(t, as.RateLimits{
		Limiter: memstore.NewRateLimiter(nil),
		Token:   as.EndpointLimits{PerClient: as.Limit{Requests: 5, Window: time.Minute}},
	})
	tok := f.tokens(t)
	for i := range 70 {
		remote := fmt.Sprintf("198.51.100.%d:1", i%7+1)
		if rec := f.token(remote, f.clientID, i%2 == 0); rec.Code == http.StatusOK {
			t.Fatalf("garbage request %d succeeded", i)
		}
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {f.clientID}}
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	r.RemoteAddr = "192.0.2.50:1"
	if rec := f.do(r, "application/x-www-form-urlencoded"); rec.Code != http.StatusOK {
		t.Fatalf("the client's own refresh: %d %s, want 200", rec.Code, rec.Body)
	}
}

// TestRateLimitRevokeIntrospect: /revoke and /introspect authenticate the
// client, which for a URL client id means fetching its metadata document:
// they spend /token's budget, per address and per client and address, and
// a refused request fetches nothing.
func TestRateLimitRevokeIntrospect(t *testing.T) {
	docs := &countingMetadata{}
	f := newFixtureWith(t, func(o *as.Options) {
		o.RateLimits = as.RateLimits{
			Limiter: memstore.NewRateLimiter(nil),
			Token: as.EndpointLimits{
				PerAddress: as.Limit{Requests: 4, Window: time.Hour},
				PerClient:  as.Limit{Requests: 2, Window: time.Hour},
			},
		}
		o.Metadata = as.NewMetadataFetcher(&as.MetadataFetcherOptions{Shared: docs})
	})
	post := func(remote, path, clientID string) *httptest.ResponseRecorder {
		form := url.Values{"token": {"not-a-token"}, "client_id": {clientID}}
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
		r.RemoteAddr = remote
		return f.do(r, "application/x-www-form-urlencoded")
	}
	const a, b = "192.0.2.10:1", "192.0.2.11:1"
	for i, tt := range []struct {
		remote, path, clientID string
		want                   int
		retry                  string
	}{
		{a, "/revoke", f.clientID, http.StatusOK, ""},
		{a, "/introspect", f.clientID, http.StatusUnauthorized, ""}, // a public client may not introspect
		{a, "/revoke", f.clientID, http.StatusTooManyRequests, "1800"},
		{a, "/revoke", "https://app.example/c.json", http.StatusOK, ""}, // a 4/4
		{a, "/revoke", "https://app.example/d.json", http.StatusTooManyRequests, "900"},
		{a, "/introspect", "https://app.example/e.json", http.StatusTooManyRequests, "900"},
		{a, "/token", "https://app.example/f.json", http.StatusTooManyRequests, "900"},
		{b, "/revoke", "https://app.example/g.json", http.StatusOK, ""},
	} {
		rec := post(tt.remote, tt.path, tt.clientID)
		if rec.Code != tt.want {
			t.Fatalf("request %d (%s from %s): status %d, want %d; body %s", i, tt.path, tt.remote, rec.Code, tt.want, rec.Body)
		}
		switch {
		case tt.want != http.StatusTooManyRequests:
		case tt.path == "/introspect": // server to server: no CORS
			check429(t, rec, tt.retry)
		default:
			checkOAuth429(t, rec, tt.retry)
		}
	}
	if n := docs.gets.Load(); n != 0 {
		t.Errorf("%d metadata documents fetched, want none (revocation and introspection never fetch one)", n)
	}
}

// countingMetadata is a shared metadata-document cache that holds a public
// client for every URL, and counts the documents asked for.
type countingMetadata struct{ gets atomic.Int32 }

func (m *countingMetadata) GetMetadata(_ context.Context, clientID string) (*as.Client, error) {
	m.gets.Add(1)
	return &as.Client{ClientID: clientID, Metadata: as.ClientMetadata{
		ClientID: clientID, RedirectURIs: []string{testRedirect}, TokenEndpointAuthMethod: "none",
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
	}}, nil
}

func (m *countingMetadata) PutMetadata(context.Context, *as.Client, time.Duration) error { return nil }

func TestRateLimitAuthorize(t *testing.T) {
	f := limitedFixture(t, as.RateLimits{
		Limiter: memstore.NewRateLimiter(nil),
		Authorize: as.EndpointLimits{
			PerAddress: as.Limit{Requests: 3, Window: time.Hour},
			PerClient:  as.Limit{Requests: 1, Window: time.Hour},
		},
	})
	const a, b = "192.0.2.10:1", "192.0.2.11:1"
	if rec := f.authorize(a, f.clientID); rec.Code != http.StatusOK {
		t.Fatalf("first authorization: %d %s", rec.Code, rec.Body)
	}
	for _, remote := range []string{a, b} { // per client: from any address
		rec := f.authorize(remote, f.clientID)
		h := check429(t, rec, "3600")
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("Content-Type = %q, want an HTML page for the browser", ct)
		}
		if !strings.Contains(rec.Body.String(), "Too many sign-in attempts") || !strings.Contains(rec.Body.String(), "Wait 3600 seconds") {
			t.Errorf("page does not say what happened and how long to wait: %s", rec.Body)
		}
		if h.Get("Location") != "" {
			t.Errorf("a 429 redirected to %q", h.Get("Location"))
		}
	}
	if rec := f.authorize(a, "unknown"); rec.Code != http.StatusBadRequest { // a 3/3
		t.Fatalf("unknown client: %d, want the 400 page", rec.Code)
	}
	rec := f.authorize(a, "unknown2")
	check429(t, rec, "1200") // 3 per hour: one every 20 minutes
}

// TestRateLimitMetadataClientIDs: a client id that is a metadata-document
// URL, shared by every installation of an app, is limited per address
// only.
func TestRateLimitMetadataClientIDs(t *testing.T) {
	f := limitedFixture(t, as.RateLimits{
		Limiter: memstore.NewRateLimiter(nil),
		Token:   as.EndpointLimits{PerClient: as.Limit{Requests: 1, Window: time.Hour}},
	})
	for i := range 3 {
		if rec := f.token("192.0.2.10:1", "https://app.example/client.json", false); rec.Code == http.StatusTooManyRequests {
			t.Fatalf("request %d with a URL client id limited per client", i)
		}
	}
}

func TestRateLimitOff(t *testing.T) {
	for _, tt := range []struct {
		name string
		rl   as.RateLimits
	}{
		{"no limiter", as.RateLimits{}},
		{"limit turned off", as.RateLimits{Limiter: memstore.NewRateLimiter(nil),
			Register: as.EndpointLimits{PerAddress: as.Limit{Requests: -1}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := limitedFixture(t, tt.rl)
			for i := range 30 {
				if rec := f.register("192.0.2.1:1"); rec.Code != http.StatusCreated {
					t.Fatalf("registration %d: %d, want 201", i, rec.Code)
				}
			}
		})
	}
}

// stubLimiter answers Allow with its fields for keys that start with
// prefix, and allows the others.
type stubLimiter struct {
	prefix string
	retry  time.Duration
	err    error
}

func (l stubLimiter) Allow(_ context.Context, key string, _ int, _ time.Duration) (bool, time.Duration, error) {
	if !strings.HasPrefix(key, l.prefix) {
		return true, 0, nil
	}
	return false, l.retry, l.err
}

// TestRateLimitFailOpen: a limiter that fails lets requests through, and
// the failure is logged.
func TestRateLimitFailOpen(t *testing.T) {
	var logs bytes.Buffer
	f := newFixtureWith(t, func(o *as.Options) {
		o.RateLimits.Limiter = stubLimiter{err: errors.New("redis: connection refused")}
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if rec := f.register("192.0.2.1:1"); rec.Code != http.StatusCreated {
		t.Errorf("registration with a failing limiter: %d, want 201", rec.Code)
	}
	if rec := f.token("192.0.2.1:1", f.clientID, false); rec.Code != http.StatusBadRequest {
		t.Errorf("token request with a failing limiter: %d, want 400 invalid_grant", rec.Code)
	}
	if got := logs.String(); !strings.Contains(got, "rate limiter failed") || !strings.Contains(got, "connection refused") {
		t.Errorf("logs = %q, want the limiter failure", got)
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for _, tt := range []struct {
		retry time.Duration
		want  string
	}{
		{time.Microsecond, "1"},
		{time.Second, "1"},
		{1500 * time.Millisecond, "2"},
		{3 * time.Second, "3"},
		{time.Hour + time.Nanosecond, "3601"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			f := newFixtureWith(t, func(o *as.Options) {
				o.RateLimits.Limiter = stubLimiter{prefix: "token:", retry: tt.retry}
			})
			checkOAuth429(t, f.token("192.0.2.1:1", "c", false), tt.want)
		})
	}
}

func TestForwardedFor(t *testing.T) {
	addr := as.ForwardedFor(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	for _, tt := range []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer: header ignored", "203.0.113.5:1", []string{"198.51.100.2"}, "203.0.113.5"},
		{"trusted peer, no header", "10.0.0.1:1", nil, "10.0.0.1"},
		{"trusted peer", "10.0.0.1:1", []string{"198.51.100.2"}, "198.51.100.2"},
		{"spoofed entries left of the client", "10.0.0.1:1", []string{"6.6.6.6, 7.7.7.7, 198.51.100.2"}, "198.51.100.2"},
		{"chain of trusted proxies", "10.0.0.1:1", []string{"6.6.6.6, 198.51.100.2, 10.0.0.9"}, "198.51.100.2"},
		{"several header lines", "10.0.0.1:1", []string{"6.6.6.6", "198.51.100.2"}, "198.51.100.2"},
		{"garbage stops at the last trusted hop", "10.0.0.1:1", []string{"198.51.100.2, garbage, 10.0.0.9"}, "10.0.0.9"},
		{"empty entry", "10.0.0.1:1", []string{"198.51.100.2,,"}, "10.0.0.1"},
		{"all trusted", "10.0.0.1:1", []string{"10.0.0.7, 10.0.0.9"}, "10.0.0.7"},
		{"entry with a port", "10.0.0.1:1", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"IPv6 peer, mapped entry", "[::1]:5", []string{"::ffff:198.51.100.2"}, "198.51.100.2"},
		{"mapped peer", "[::ffff:10.0.0.1]:80", []string{"198.51.100.3"}, "198.51.100.3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := addr(r); got != tt.want {
				t.Errorf("ForwardedFor = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRateLimitForwardedFor: behind a trusted proxy each forwarded client
// has its own budget; from anywhere else, X-Forwarded-For changes nothing.
func TestRateLimitForwardedFor(t *testing.T) {
	f := limitedFixture(t, as.RateLimits{
		Limiter:       memstore.NewRateLimiter(nil),
		Register:      as.EndpointLimits{PerAddress: as.Limit{Requests: 1, Window: time.Hour}},
		ClientAddress: as.ForwardedFor(netip.MustParsePrefix("10.0.0.0/8")),
	})
	reg := func(remote, xff string) int {
		r := httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(
			`{"redirect_uris":["`+testRedirect+`"],"token_endpoint_auth_method":"none"}`))
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		return f.do(r, "application/json").Code
	}
	for i, tt := range []struct {
		remote, xff string
		want        int
	}{
		{"203.0.113.5:1", "1.1.1.1", http.StatusCreated},
		{"203.0.113.5:2", "2.2.2.2", http.StatusTooManyRequests}, // a spoofed header is no fresh budget
		{"10.0.0.1:1", "198.51.100.1", http.StatusCreated},
		{"10.0.0.2:1", "198.51.100.2", http.StatusCreated}, // another client behind the proxies
		{"10.0.0.2:1", "198.51.100.1", http.StatusTooManyRequests},
		{"10.0.0.1:1", "203.0.113.5", http.StatusTooManyRequests}, // the same client, direct or proxied
	} {
		if got := reg(tt.remote, tt.xff); got != tt.want {
			t.Errorf("request %d from %s for %s: %d, want %d", i, tt.remote, tt.xff, got, tt.want)
		}
	}
}

// TestRateLimitIPv6: IPv6 clients are counted per /64.
func TestRateLimitIPv6(t *testing.T) {
	f := limitedFixture(t, as.RateLimits{
		Limiter:  memstore.NewRateLimiter(nil),
		Register: as.EndpointLimits{PerAddress: as.Limit{Requests: 1, Window: time.Hour}},
	})
	for i, tt := range []struct {
		remote string
		want   int
	}{
		{"[2001:db8:1:2::1]:1", http.StatusCreated},
		{"[2001:db8:1:2:ffff::9]:1", http.StatusTooManyRequests},
		{"[2001:db8:1:3::1]:1", http.StatusCreated},
		{"[::ffff:192.0.2.1]:1", http.StatusTooManyRequests}, // the fixture's 192.0.2.1
	} {
		if rec := f.register(tt.remote); rec.Code != tt.want {
			t.Errorf("request %d from %s: %d, want %d", i, tt.remote, rec.Code, tt.want)
		}
	}
}

// TestRateLimitSharedLimiter: two servers (replicas) on one limiter share
// the budgets.
func TestRateLimitSharedLimiter(t *testing.T) {
	rl := as.RateLimits{
		Limiter:  memstore.NewRateLimiter(nil),
		Register: as.EndpointLimits{PerAddress: as.Limit{Requests: 3, Window: time.Hour}},
	}
	f1, f2 := limitedFixture(t, rl), limitedFixture(t, rl) // 2 of 3 used
	if rec := f1.register("192.0.2.1:1"); rec.Code != http.StatusCreated {
		t.Fatalf("third registration: %d", rec.Code)
	}
	checkOAuth429(t, f2.register("192.0.2.1:1"), "1200")
}

// TestRateLimitDefaults: without limits set, the documented defaults apply
// (20 registrations a minute per address).
func TestRateLimitDefaults(t *testing.T) {
	f := limitedFixture(t, as.RateLimits{Limiter: memstore.NewRateLimiter(nil)}) // 1 of 20
	for i := range 19 {
		if rec := f.register("192.0.2.1:1"); rec.Code != http.StatusCreated {
			t.Fatalf("registration %d: %d, want 201", i+2, rec.Code)
		}
	}
	checkOAuth429(t, f.register("192.0.2.1:1"), "3")
}

// FuzzForwardedFor: whatever the header holds, the address is the peer's
// when the peer is untrusted, and otherwise the peer's or one the header
// names.
func FuzzForwardedFor(f *testing.F) {
	for _, s := range []string{"198.51.100.2", "6.6.6.6, 198.51.100.2, 10.0.0.9", "garbage,,10.0.0.1", "[::1]:80, ::ffff:1.2.3.4", ""} {
		f.Add("10.0.0.1:1", s)
		f.Add("203.0.113.5:1", s)
	}
	addr := as.ForwardedFor(netip.MustParsePrefix("10.0.0.0/8"))
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := addr(r)
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			host = remote
		}
		peer, err := netip.ParseAddr(host)
		if err != nil {
			if got != host {
				t.Fatalf("unparsable peer %q: got %q, want it unchanged", remote, got)
			}
			return
		}
		peer = peer.Unmap().WithZone("")
		if got == peer.String() {
			return
		}
		if !netip.MustParsePrefix("10.0.0.0/8").Contains(peer) {
			t.Fatalf("untrusted peer %q with X-Forwarded-For %q: got %q", remote, xff, got)
		}
		a, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("got %q, not an address", got)
		}
		for _, e := range strings.Split(xff, ",") {
			e = strings.TrimSpace(e)
			h, err := netip.ParseAddr(e)
			if err != nil {
				ap, _ := netip.ParseAddrPort(e)
				h = ap.Addr()
			}
			if h.Unmap().WithZone("") == a {
				return
			}
		}
		t.Fatalf("got %q, which X-Forwarded-For %q does not name", got, xff)
	})
}

// TestRegisterFull: past the store's bound on clients, /register answers
// 503 temporarily_unavailable with Retry-After (an RFC 7591 error body),
// and the clients registered keep working.
func TestRegisterFull(t *testing.T) {
	f := newFixtureOn(t, memstore.New(&memstore.Options{MaxClients: 2}), nil) // 1 of 2
	if rec := f.register("192.0.2.1:1"); rec.Code != http.StatusCreated {
		t.Fatalf("second registration: %d %s", rec.Code, rec.Body)
	}
	rec := f.register("192.0.2.1:1")
	var body struct {
		Error    string `json:"error"`
		ClientID string `json:"client_id"`
	}
	if rec.Code != http.StatusServiceUnavailable || json.Unmarshal(rec.Body.Bytes(), &body) != nil ||
		body.Error != "temporarily_unavailable" || body.ClientID != "" || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("registration past the bound: %d %s (Retry-After %q), want 503 temporarily_unavailable with Retry-After",
			rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	f.tokens(t) // the first client signs in
}
