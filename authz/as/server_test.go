package as_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/memstore"
	"github.com/remotemcp/remotemcp/authz/token"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// faultyUpstream is an upstream whose answers the test chooses: the one
// place where a fake is right, to inject the upstream's failures.
type faultyUpstream struct {
	mu          sync.Mutex
	exchangeErr error
	identityErr error
	subject     string
	// groups and email, if set, are the identity's.
	groups []string
	email  string
	// sent is the verifier of the last AuthCodeURL, got the last
	// Exchange's.
	sent, got string
}

func (u *faultyUpstream) AuthCodeURL(state, verifier string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sent = verifier
	return "https://upstream.test/authorize?" + url.Values{"state": {state}}.Encode()
}

func (u *faultyUpstream) Exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.got = verifier
	if u.exchangeErr != nil {
		return nil, u.exchangeErr
	}
	return &oauth2.Token{AccessToken: "upstream-" + code, TokenType: "Bearer"}, nil
}

func (u *faultyUpstream) FetchIdentity(ctx context.Context, tok *oauth2.Token) (*upstream.Identity, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.identityErr != nil {
		return nil, u.identityErr
	}
	return &upstream.Identity{Subject: u.subject, Login: u.subject, Groups: u.groups, Email: u.email, EmailVerified: u.email != ""}, nil
}

type mapVault struct {
	mu sync.Mutex
	m  map[string]*oauth2.Token
	up *faultyUpstream
}

// Identity is upstream.Vault's: who the grant's user is now.
func (v *mapVault) Identity(ctx context.Context, grantID string) (*upstream.Identity, error) {
	v.mu.Lock()
	tok, ok := v.m[grantID]
	v.mu.Unlock()
	if !ok {
		return nil, upstream.ErrReauthorize
	}
	return v.up.FetchIdentity(ctx, tok)
}

func (v *mapVault) Put(ctx context.Context, grantID string, tok *oauth2.Token) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.m[grantID] = tok
	return nil
}

// vaultKeys is the key ring of mapVault's sealing: the same sealing as
// upstream.Vault's.
var vaultKeys = func() *upstream.EncryptionKeys {
	k, err := upstream.NewEncryptionKeys("k1", map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		panic(err)
	}
	return k
}()

func (v *mapVault) SealVerifier(pendingID, verifier string) (*upstream.Sealed, error) {
	return vaultKeys.Seal("pending "+pendingID, []byte(verifier))
}

func (v *mapVault) OpenVerifier(pendingID string, s *upstream.Sealed) (string, error) {
	b, err := vaultKeys.Open("pending "+pendingID, s)
	return string(b), err
}

const (
	testIssuer   = "https://as.example.com"
	testResource = "https://as.example.com/mcp"
	testRedirect = "http://127.0.0.1:9/cb"
)

type fixture struct {
	iss      *token.Issuer
	srv      *as.Server
	h        http.Handler
	up       *faultyUpstream
	clientID string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureWith(t, nil)
}

// newFixtureWith is newFixture with options changed by configure.
func newFixtureWith(t testing.TB, configure func(*as.Options)) *fixture {
	t.Helper()
	return newFixtureOn(t, memstore.New(nil), configure)
}

// newFixtureOn is newFixtureWith on the store st.
func newFixtureOn(t testing.TB, st *memstore.Store, configure func(*as.Options)) *fixture {
	t.Helper()
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
	up := &faultyUpstream{subject: "u1"}
	opts := as.Options{
		Issuer: testIssuer, Resource: testResource, UpstreamName: "Test IdP", SubjectPrefix: "test:",
		Scopes:    []as.ScopeInfo{{Name: "notes:read", Description: "read"}, {Name: "notes:write", Description: "write"}},
		CookieKey: []byte("0123456789abcdef0123456789abcdef"),
	}
	if configure != nil {
		configure(&opts)
	}
	stores := as.Stores{Clients: st, Pending: st, Codes: st, Grants: st, Refresh: st, Consents: st}
	srv, err := as.New(stores, iss, up, &mapVault{m: map[string]*oauth2.Token{}, up: up}, &opts)
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
	return f
}

func (f *fixture) do(r *http.Request, contentType string) *httptest.ResponseRecorder {
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	return rec
}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

const testVerifier = "a-verifier-of-forty-three-characters-or-more-0123456789"

func (f *fixture) authQuery() url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {f.clientID}, "redirect_uri": {testRedirect},
		"code_challenge": {challenge(testVerifier)}, "code_challenge_method": {"S256"}, "state": {"s1"},
		"resource": {testResource}, "scope": {"notes:read"}}
}

var (
	txRE   = regexp.MustCompile(`name="tx" value="([^"]+)"`)
	csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// consentThenUpstream runs /authorize and approves; it returns the cookies
// and the state sent upstream.
func (f *fixture) consentThenUpstream(t *testing.T) (cookies []*http.Cookie, state string) {
	t.Helper()
	rec := f.do(httptest.NewRequest(http.MethodGet, "/authorize?"+f.authQuery().Encode(), nil), "")
	if rec.Code != http.StatusOK {
		t.Fatalf("authorize: %d %s", rec.Code, rec.Body)
	}
	cookies = rec.Result().Cookies()
	tx, csrf := txRE.FindStringSubmatch(rec.Body.String()), csrfRE.FindStringSubmatch(rec.Body.String())
	if tx == nil || csrf == nil {
		t.Fatalf("no consent form in %s", rec.Body)
	}
	r := httptest.NewRequest(http.MethodPost, "/authorize/consent", strings.NewReader(url.Values{"tx": {tx[1]}, "csrf": {csrf[1]}, "decision": {"approve"}}.Encode()))
	// What Chromium sends for the consent form: its own verdict, and
	// Origin: null when the page's referrer policy hides the origin (a
	// first try with Referrer-Policy: no-referrer refused every approval).
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Origin", "null")
	for _, c := range cookies {
		r.AddCookie(c)
	}
	rec = f.do(r, "application/x-www-form-urlencoded")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || loc == nil || loc.Host != "upstream.test" {
		t.Fatalf("consent: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	return cookies, loc.Query().Get("state")
}

func (f *fixture) callback(cookies []*http.Cookie, q url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/callback?"+q.Encode(), nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return f.do(r, "")
}

// TestCallbackUpstreamFailures: what the client is told when the upstream
// fails: a transient failure is temporarily_unavailable (retry), a refusal
// is access_denied or server_error; always with iss and state, always to
// the registered redirect URI.
func TestCallbackUpstreamFailures(t *testing.T) {
	for _, tt := range []struct {
		name     string
		query    url.Values
		exchange error
		identity error
		want     string
	}{
		{"upstream 503", url.Values{"code": {"c"}}, fmt.Errorf("token: %w", upstream.ErrUnavailable), nil, "temporarily_unavailable"},
		{"upstream timeout", url.Values{"code": {"c"}}, context.DeadlineExceeded, nil, "temporarily_unavailable"},
		{"upstream refuses the code", url.Values{"code": {"c"}}, errors.New("invalid_grant"), nil, "server_error"},
		{"userinfo fails", url.Values{"code": {"c"}}, nil, errors.New("401"), "server_error"},
		{"user cancelled upstream", url.Values{"error": {"access_denied"}}, nil, nil, "access_denied"},
		{"no code", url.Values{}, nil, nil, "server_error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.up.exchangeErr, f.up.identityErr = tt.exchange, tt.identity
			cookies, state := f.consentThenUpstream(t)
			tt.query.Set("state", state)
			rec := f.callback(cookies, tt.query)
			loc, _ := url.Parse(rec.Header().Get("Location"))
			if rec.Code != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), testRedirect+"?") {
				t.Fatalf("callback: %d to %q", rec.Code, rec.Header().Get("Location"))
			}
			q := loc.Query()
			if q.Get("error") != tt.want || q.Get("iss") != testIssuer || q.Get("state") != "s1" || q.Has("code") {
				t.Errorf("redirect query %v: want error %s with iss and state, no code", q, tt.want)
			}
			// The state was single-use.
			if rec := f.callback(cookies, url.Values{"state": {state}, "code": {"c"}}); rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
				t.Errorf("state reused: %d to %q", rec.Code, rec.Header().Get("Location"))
			}
		})
	}
}

// TestCallbackSuccess: the happy path issues a code the token endpoint
// redeems once.
func TestCallbackSuccess(t *testing.T) {
	f := newFixture(t)
	_, state := f.consentThenUpstream(t)
	// Without the browser cookie: refused, and the state is gone.
	cb := f.callback(nil, url.Values{"state": {state}, "code": {"c"}})
	if cb.Code != http.StatusForbidden || cb.Header().Get("Location") != "" {
		t.Fatalf("callback without the browser cookie: %d to %q", cb.Code, cb.Header().Get("Location"))
	}
	cookies, state := f.consentThenUpstream(t)
	cb = f.callback(cookies, url.Values{"state": {state}, "code": {"c"}})
	loc, _ := url.Parse(cb.Header().Get("Location"))
	code := loc.Query().Get("code")
	if cb.Code != http.StatusFound || code == "" {
		t.Fatalf("callback: %d to %q", cb.Code, cb.Header().Get("Location"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {testVerifier}, "client_id": {f.clientID}, "redirect_uri": {testRedirect}}
	rec := f.do(httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode())), "application/x-www-form-urlencoded")
	var tok as.TokenResponse
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &tok) != nil || tok.AccessToken == "" || tok.RefreshToken == "" || tok.Scope != "notes:read" {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
}

// FuzzAuthorize: whatever the query, /authorize never fails with a 5xx and
// never redirects anywhere but the registered redirect URI (an open
// redirector) — the consent page comes first, so never upstream either.
func FuzzAuthorize(f *testing.F) {
	f.Add("response_type=code&client_id=CID&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=x")
	f.Add("client_id=CID&redirect_uri=javascript:alert(1)")
	f.Add("client_id=CID&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&response_type=token")
	f.Add("client_id=CID&client_id=CID")
	f.Add("client_id=CID&resource=https%3A%2F%2Fevil%2F&resource=x")
	f.Add("client_id=https%3A%2F%2F169.254.169.254%2Fx")
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, query string) {
		query = strings.ReplaceAll(query, "CID", fx.clientID)
		if strings.Contains(query, "https%3A") && strings.Contains(query, "client_id=https") {
			return // CIMD is off in this fixture; keep the fuzzer off the network
		}
		rec := fx.do(httptest.NewRequest(http.MethodGet, "/authorize?"+url.PathEscape(query), nil), "")
		rec2 := fx.do(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/authorize", RawQuery: query}, Header: http.Header{}, Host: "as.example.com"}, "")
		for _, r := range []*httptest.ResponseRecorder{rec, rec2} {
			if r.Code >= 500 {
				t.Fatalf("status %d for %q", r.Code, query)
			}
			// A loopback redirect URI matches the registered one on any
			// port, or none (RFC 8252 §7.3): only host and path must match.
			if loc := r.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, testRedirect) {
				u, err := url.Parse(loc)
				if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Path != "/cb" || u.User != nil {
					t.Fatalf("redirect to %q for %q", loc, query)
				}
			}
		}
	})
}

// FuzzToken: whatever the body, /token answers JSON with no-store, and
// never a 5xx.
func FuzzToken(f *testing.F) {
	f.Add("grant_type=authorization_code&code=x&code_verifier=y&client_id=CID")
	f.Add("grant_type=refresh_token&refresh_token=x&client_id=CID")
	f.Add("grant_type=password&username=a&password=b")
	f.Add("grant_type=authorization_code&grant_type=refresh_token")
	f.Add("client_id=CID&client_secret=s&grant_type=refresh_token")
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body string) {
		body = strings.ReplaceAll(body, "CID", fx.clientID)
		rec := fx.do(httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body)), "application/x-www-form-urlencoded")
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer %d %q (Cache-Control %q) for %q", rec.Code, rec.Body, rec.Header().Get("Cache-Control"), body)
		}
	})
}
