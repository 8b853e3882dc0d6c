package main

// The attacks that have hit MCP OAuth implementations (the MCP
// specification's security best practices name most of them), each played
// end to end against remotemcp --auth proxy with the development provider.
// Every test asserts that the attack fails AND that the legitimate path next
// to it still works, so that a server refusing everything fails too.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/authz/token"
)

// ---------------------------------------------------------------------------
// Helpers (prefixed atk: the package's test files share one namespace).

const (
	atkRead  = "notes:read"
	atkWrite = "notes:write"
)

// atkStartLoggedProxy is startProxy with the server's slog output, at debug
// level, captured in a buffer (and echoed to t.Log with -v).
func atkStartLoggedProxy(t *testing.T, args ...string) (*proxyServer, *syncBuffer) {
	t.Helper()
	ln, base := reserve(t)
	cfg, err := parseConfig(append([]string{"--listen", ln.Addr().String(), "--public-url", base, "--auth", "proxy"}, args...),
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	var w io.Writer = buf
	if testing.Verbose() {
		w = io.MultiWriter(buf, testWriter{t})
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := build(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); a.close() })
	return &proxyServer{base: base, resource: base + "/mcp", upstreamFill: map[string]string{"username": "alice"}, upstreamHost: base}, buf
}

// atkNav sends one request as a browser would (navigation headers, the
// browser's cookie jar when b is set), without following redirects. hdr
// sets headers (an empty value deletes one); form, if set, is a POST body.
func atkNav(t *testing.T, b *formBrowser, method, rawURL string, form url.Values, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "remotemcp-test-attacks")
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if b != nil {
		client = b.client
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, string(page)
}

// atkTyped is the Sec-Fetch-Site of a URL the user (or an app) opened.
var atkTyped = map[string]string{"Sec-Fetch-Site": "none"}

// atkConsent checks that a response is our consent page for clientName and
// returns its tx and csrf fields.
func atkConsent(t *testing.T, status int, h http.Header, page, clientName string) (tx, csrf string) {
	t.Helper()
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if status != http.StatusOK || mt != "text/html" || h.Get("Location") != "" {
		t.Fatalf("want our consent page (200 HTML, no Location), got %d %q Location %q: %s", status, mt, h.Get("Location"), pageText(page))
	}
	if !strings.Contains(page, clientName) {
		t.Errorf("the consent page does not name the client %q: %s", clientName, pageText(page))
	}
	if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("the consent page may be framed: X-Frame-Options %q, CSP %q", h.Get("X-Frame-Options"), h.Get("Content-Security-Policy"))
	}
	form, button := pickForm(parseForms(page), "approve")
	if form == nil || button == nil || button.value != "approve" {
		t.Fatalf("the consent page has no Allow button: %s", pageText(page))
	}
	v := form.values()
	if v.Get("tx") == "" || v.Get("csrf") == "" {
		t.Fatalf("the consent form lacks tx or csrf: %v", v)
	}
	return v.Get("tx"), v.Get("csrf")
}

// atkErrorPage checks that a response is an HTML error page with status
// want and no redirect.
func atkErrorPage(t *testing.T, want, status int, h http.Header, page string) {
	t.Helper()
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if status != want || mt != "text/html" || h.Get("Location") != "" {
		t.Errorf("want an HTML error page %d without Location, got %d %q Location %q: %s", want, status, mt, h.Get("Location"), pageText(page))
	}
	if strings.Contains(page, "code=") {
		t.Errorf("the error page mentions a code: %s", pageText(page))
	}
}

// atkRefusedRequest checks that an authorization request was refused on an
// error page of ours naming the OAuth error code, never by a redirect to
// the client: before the user has seen the consent page, a redirect would
// be an open redirector.
func atkRefusedRequest(t *testing.T, status int, h http.Header, page, code string) {
	t.Helper()
	atkErrorPage(t, http.StatusBadRequest, status, h, page)
	if !strings.Contains(pageText(page), code) {
		t.Errorf("the error page does not name %s: %s", code, pageText(page))
	}
}

// atkWantOAuthError checks an OAuth error redirect: error code, state and
// iss, and no code.
func atkWantOAuthError(t *testing.T, q url.Values, code, state, issuer string) {
	t.Helper()
	if q.Get("error") != code || q.Has("code") || q.Get("state") != state || q.Get("iss") != issuer {
		t.Errorf("redirect query %v: want error=%s, state=%q, iss=%s and no code", q, code, state, issuer)
	}
}

// atkAuth is an authorization URL of c with a fresh PKCE pair, and its
// verifier.
func atkAuth(c *manualClient, state, scope string, extra url.Values) (authURL, verifier string) {
	verifier, challenge := pkcePair()
	return c.authURL(challenge, state, scope, extra), verifier
}

// atkWithout removes parameters from a URL's query.
func atkWithout(t *testing.T, raw string, names ...string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for _, n := range names {
		q.Del(n)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// atkCode plays u's browser through an authorization of c and returns the
// code and the verifier.
func atkCode(t *testing.T, c *manualClient, u *user, scope string, extra url.Values) (code, verifier string) {
	t.Helper()
	authURL, verifier := atkAuth(c, "st", scope, extra)
	q, err := u.authorize(t.Context(), authURL, c.redirect)
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("code") == "" || q.Get("iss") != c.s.base || q.Get("state") != "st" {
		t.Fatalf("authorization response %v: want a code, state st and iss %s", q, c.s.base)
	}
	return q.Get("code"), verifier
}

// atkExchange redeems a code of c.
func atkExchange(t *testing.T, c *manualClient, code, verifier string) (int, map[string]any) {
	t.Helper()
	st, body, _ := c.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {c.redirect}, "resource": {c.s.resource}})
	return st, body
}

// atkRefresh refreshes with c's credentials.
func atkRefresh(t *testing.T, c *manualClient, refresh string) (int, map[string]any) {
	t.Helper()
	st, body, _ := c.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	return st, body
}

func atkStr(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// atkWantTokenError checks a JSON error of the token endpoint.
func atkWantTokenError(t *testing.T, what string, status int, body map[string]any, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || atkStr(body, "error") != code || body["access_token"] != nil {
		t.Errorf("%s: got %d %v, want %d error=%s and no token", what, status, body, wantStatus, code)
	}
}

// atkMCP calls whoami with a bearer token and returns the status and the
// WWW-Authenticate challenge.
func atkMCP(t *testing.T, s *proxyServer, token string) (int, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.resource, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", "whoami")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// atkWantInvalidToken checks that /mcp refuses token with 401
// error="invalid_token".
func atkWantInvalidToken(t *testing.T, s *proxyServer, what, token string) {
	t.Helper()
	st, www := atkMCP(t, s, token)
	if st != http.StatusUnauthorized || !strings.Contains(www, `error="invalid_token"`) {
		t.Errorf("%s: /mcp answered %d %q, want 401 with error=\"invalid_token\"", what, st, www)
	}
}

// atkPost POSTs a raw body to an endpoint of s.
func atkPost(t *testing.T, s *proxyServer, path, contentType, body string, basic *[2]string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, resp.Header, out
}

// atkJWT splits a JWT into its decoded header and claims.
func atkJWT(t *testing.T, tok string) (hdr, claims map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return hdr, claims, parts
}

func atkB64JSON(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func atkRegisterRaw(t *testing.T, s *proxyServer, md map[string]any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(md)
	st, _, out := atkPost(t, s, "/register", "application/json", string(body), nil)
	return st, out
}

// ---------------------------------------------------------------------------
// 1. Confused deputy.

// TestProxyAttackConfusedDeputy: a victim who approved client A has the user
// cookie and a remembered approval. An attacker's client B, registered with
// its own redirect URI, must get our consent page in the victim's browser,
// never a redirect upstream (where the victim's upstream session would
// carry it through) or to B. The remembered approval applies only to A,
// with the same redirect URI and scopes, and only to a navigation no other
// site started.
func TestProxyAttackConfusedDeputy(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t)
	upstream := s.base + "/dev-idp/authorize"
	a := s.register(t, map[string]any{"client_name": "Client Alpha", "token_endpoint_auth_method": "none",
		"redirect_uris": []string{"http://127.0.0.1:9/cb", "http://127.0.0.1:9/other"}, "grant_types": []string{"authorization_code", "refresh_token"}})
	victim := s.newUser(t)
	if tok := a.login(t, victim, atkRead); atkStr(tok, "access_token") == "" {
		t.Fatalf("the victim's first authorization of A: %v", tok)
	}
	evil := s.register(t, map[string]any{"client_name": "Evil Bravo", "token_endpoint_auth_method": "none",
		"redirect_uris": []string{"https://attacker.example/cb"}})

	t.Run("attacker client B gets the consent page", func(t *testing.T) {
		for _, site := range []string{"none", "cross-site", "same-origin"} {
			authURL, _ := atkAuth(evil, "x", atkRead, nil)
			st, h, page := atkNav(t, victim.b, http.MethodGet, authURL, nil, map[string]string{"Sec-Fetch-Site": site})
			atkConsent(t, st, h, page, "Evil Bravo")
			if strings.Contains(page, "Client Alpha") {
				t.Errorf("Sec-Fetch-Site %s: B's consent page names A", site)
			}
		}
	})

	t.Run("B cannot borrow A's redirect URI, nor A the attacker's", func(t *testing.T) {
		borrowA, _ := atkAuth(evil, "x", atkRead, url.Values{"redirect_uri": {a.redirect}})
		toAttacker, _ := atkAuth(a, "x", atkRead, url.Values{"redirect_uri": {"https://attacker.example/cb"}})
		for _, u := range []string{borrowA, toAttacker} {
			st, h, page := atkNav(t, victim.b, http.MethodGet, u, nil, atkTyped)
			atkErrorPage(t, http.StatusBadRequest, st, h, page)
		}
	})

	// Re-authorizations of A from the victim's browser: remembered only for
	// the same redirect URI and scopes, and only when not started by
	// another site.
	for _, tc := range []struct {
		name  string
		scope string
		extra url.Values
		hdr   map[string]string
		auto  bool
	}{
		{"same redirect and scopes, opened by the user", atkRead, nil, atkTyped, true},
		{"same redirect and scopes, same-origin", atkRead, nil, map[string]string{"Sec-Fetch-Site": "same-origin"}, true},
		{"no scope (every offered scope)", "", nil, atkTyped, false},
		{"more scopes than approved", atkRead + " " + atkWrite, nil, atkTyped, false},
		{"another registered redirect URI", atkRead, url.Values{"redirect_uri": {"http://127.0.0.1:9/other"}}, atkTyped, false},
		{"cross-site navigation", atkRead, nil, map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"same-site navigation", atkRead, nil, map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"no Sec-Fetch-Site", atkRead, nil, map[string]string{"Sec-Fetch-Site": ""}, false},
	} {
		t.Run("A again: "+tc.name, func(t *testing.T) {
			authURL, verifier := atkAuth(a, "again", tc.scope, tc.extra)
			st, h, page := atkNav(t, victim.b, http.MethodGet, authURL, nil, tc.hdr)
			if !tc.auto {
				atkConsent(t, st, h, page, "Client Alpha")
				return
			}
			if st != http.StatusFound || !strings.HasPrefix(h.Get("Location"), upstream) {
				t.Fatalf("want the remembered approval to go straight upstream, got %d Location %q: %s", st, h.Get("Location"), pageText(page))
			}
			// And it finishes: the upstream login, our callback, a code
			// that redeems.
			got, err := victim.b.run(t.Context(), h.Get("Location"), a.redirect, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			q := got.Query()
			if q.Get("code") == "" || q.Get("state") != "again" {
				t.Fatalf("auto-approved flow ended at %s", got)
			}
			if st, tok := atkExchange(t, a, q.Get("code"), verifier); st != http.StatusOK {
				t.Fatalf("token: %d %v", st, tok)
			}
		})
	}

	t.Run("remembered approval, another account upstream", func(t *testing.T) {
		// The remembered approval is alice's (the user cookie); whoever
		// signs in upstream as bob in that browser approved nothing.
		authURL, _ := atkAuth(a, "bob", atkRead, nil)
		st, h, page := atkNav(t, victim.b, http.MethodGet, authURL, nil, atkTyped)
		if st != http.StatusFound || !strings.HasPrefix(h.Get("Location"), upstream) {
			t.Fatalf("want the remembered approval to go upstream, got %d %q: %s", st, h.Get("Location"), pageText(page))
		}
		victim.b.fillHost(s.upstreamHost, map[string]string{"username": "bob"})
		defer victim.b.fillHost(s.upstreamHost, s.upstreamFill)
		cb, err := victim.b.run(t.Context(), h.Get("Location"), s.base+"/callback", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		st, h, page = atkNav(t, victim.b, http.MethodGet, cb.String(), nil, map[string]string{"Sec-Fetch-Site": "same-origin"})
		atkErrorPage(t, http.StatusForbidden, st, h, page)
	})

	t.Run("another browser has no remembered approval", func(t *testing.T) {
		authURL, _ := atkAuth(a, "x", atkRead, nil)
		st, h, page := atkNav(t, s.newUser(t).b, http.MethodGet, authURL, nil, atkTyped)
		atkConsent(t, st, h, page, "Client Alpha")
	})
}

// TestProxyAttackConsentPageInjection: what a client registers is shown
// escaped on the consent page, and names that could mislead are refused.
func TestProxyAttackConsentPageInjection(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t)
	name := `Evil"><script>alert(1)</script><img src=x onerror=alert(2)>`
	c := s.register(t, map[string]any{"client_name": name, "token_endpoint_auth_method": "none",
		"redirect_uris": []string{"http://127.0.0.1:9/cb?a=1&b=2"}})
	authURL, _ := atkAuth(c, "st", atkRead, nil)
	st, h, page := atkNav(t, nil, http.MethodGet, authURL, nil, atkTyped)
	atkConsent(t, st, h, page, "Evil&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;")
	for _, raw := range []string{"<script>alert(1)", "<img src=x", `"><script`} {
		if strings.Contains(page, raw) {
			t.Errorf("the consent page contains the client's raw markup %q", raw)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("CSP %q does not forbid scripts", h.Get("Content-Security-Policy"))
	}
	for _, name := range []string{"Good App\u202Eppa liveE", "Good\nApp", "Good\x00App", "Good\u200fApp"} {
		st, out := atkRegisterRaw(t, s, map[string]any{"client_name": name, "redirect_uris": []string{"http://127.0.0.1:9/cb"}, "token_endpoint_auth_method": "none"})
		if st != http.StatusBadRequest || atkStr(out, "error") != "invalid_client_metadata" {
			t.Errorf("client_name %q: %d %v, want 400 invalid_client_metadata", name, st, out)
		}
	}
}

// ---------------------------------------------------------------------------
// 2. Consent bound to the browser, and CSRF on the consent form.

// TestProxyAttackConsentBinding: the callback of an approved authorization
// is refused in any browser but the one that approved it; the consent form
// refuses posts without the right CSRF token, cookie and origin.
func TestProxyAttackConsentBinding(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t)
	c := s.register(t, nil)
	callback := s.base + "/callback"

	// toCallback plays u through consent and the upstream login, stopping
	// before our callback; it returns the callback URL.
	toCallback := func(t *testing.T, u *user) (string, string) {
		t.Helper()
		authURL, verifier := atkAuth(c, "st", atkRead, nil)
		cb, err := u.b.run(t.Context(), authURL, callback, nil, "approve")
		if err != nil {
			t.Fatal(err)
		}
		if cb.Query().Get("code") == "" {
			t.Fatalf("no upstream code in %s", cb)
		}
		return cb.String(), verifier
	}

	t.Run("cookie attributes", func(t *testing.T) {
		// The browser cookie on /authorize, the user cookie on /callback.
		u := s.newUser(t)
		authURL, _ := atkAuth(c, "st", atkRead, nil)
		_, h, _ := atkNav(t, u.b, http.MethodGet, authURL, nil, atkTyped)
		cookies := (&http.Response{Header: h}).Cookies()
		cb, _ := toCallback(t, u)
		_, h, _ = atkNav(t, u.b, http.MethodGet, cb, nil, map[string]string{"Sec-Fetch-Site": "same-origin"})
		cookies = append(cookies, (&http.Response{Header: h}).Cookies()...)
		seen := map[string]bool{}
		for _, ck := range cookies {
			seen[ck.Name] = true
			if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
				t.Errorf("cookie %s: Secure %v HttpOnly %v SameSite %v Path %q Domain %q; want __Host-, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain",
					ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite, ck.Path, ck.Domain)
			}
		}
		if !seen["__Host-remotemcp-browser"] || !seen["__Host-remotemcp-user"] {
			t.Errorf("cookies set: %v", seen)
		}
	})

	t.Run("callback replayed elsewhere", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			browser func() *formBrowser
		}{
			{"another browser with its own cookie", func() *formBrowser {
				b := s.newUser(t).b
				authURL, _ := atkAuth(c, "mine", atkRead, nil)
				atkNav(t, b, http.MethodGet, authURL, nil, atkTyped) // gets its own browser cookie
				return b
			}},
			{"a client without cookies", func() *formBrowser { return nil }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				victim := s.newUser(t)
				cb, _ := toCallback(t, victim)
				st, h, page := atkNav(t, tc.browser(), http.MethodGet, cb, nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
				atkErrorPage(t, http.StatusForbidden, st, h, page)
				// The state was single-use: the replay spent it, so not even
				// the right browser gets a code for it now.
				st, h, page = atkNav(t, victim.b, http.MethodGet, cb, nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
				atkErrorPage(t, http.StatusBadRequest, st, h, page)
			})
		}
		// The legitimate path: the browser that approved finishes.
		u := s.newUser(t)
		cb, verifier := toCallback(t, u)
		got, err := u.b.run(t.Context(), cb, c.redirect, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if st, tok := atkExchange(t, c, got.Query().Get("code"), verifier); st != http.StatusOK {
			t.Fatalf("the approving browser's code: %d %v", st, tok)
		}
	})

	t.Run("CSRF", func(t *testing.T) {
		u := s.newUser(t)
		authURL, _ := atkAuth(c, "st", atkRead, nil)
		st, h, page := atkNav(t, u.b, http.MethodGet, authURL, nil, atkTyped)
		tx, csrf := atkConsent(t, st, h, page, "manual")

		// Another browser, with its own consent page for the same client.
		other := s.newUser(t)
		authURL2, _ := atkAuth(c, "st", atkRead, nil)
		st, h, page = atkNav(t, other.b, http.MethodGet, authURL2, nil, atkTyped)
		tx2, csrf2 := atkConsent(t, st, h, page, "manual")
		if tx2 == tx || csrf2 == csrf {
			t.Fatal("two browsers got the same tx or csrf")
		}
		// And a second pending authorization in the victim's browser.
		st, h, page = atkNav(t, u.b, http.MethodGet, authURL2, nil, atkTyped)
		txB, _ := atkConsent(t, st, h, page, "manual")

		good := map[string]string{"Origin": s.base, "Sec-Fetch-Site": "same-origin"}
		form := func(tx, csrf string) url.Values {
			v := url.Values{"decision": {"approve"}}
			if tx != "" {
				v.Set("tx", tx)
			}
			if csrf != "" {
				v.Set("csrf", csrf)
			}
			return v
		}
		for _, tc := range []struct {
			name string
			b    *formBrowser
			form url.Values
			hdr  map[string]string
		}{
			{"missing csrf", u.b, form(tx, ""), good},
			{"wrong csrf", u.b, form(tx, strings.Repeat("A", len(csrf))), good},
			{"another browser's csrf", u.b, form(tx, csrf2), good},
			{"csrf of another tx", u.b, form(txB, csrf), good},
			{"missing tx", u.b, form("", csrf), good},
			{"valid csrf, another browser's cookie", other.b, form(tx, csrf), good},
			{"valid csrf, no cookie", nil, form(tx, csrf), good},
			{"Origin of another site", u.b, form(tx, csrf), map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": ""}},
			{"Origin null", u.b, form(tx, csrf), map[string]string{"Origin": "null", "Sec-Fetch-Site": ""}},
			{"Sec-Fetch-Site cross-site", u.b, form(tx, csrf), map[string]string{"Origin": s.base, "Sec-Fetch-Site": "cross-site"}},
			{"Sec-Fetch-Site same-site", u.b, form(tx, csrf), map[string]string{"Origin": s.base, "Sec-Fetch-Site": "same-site"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, h, page := atkNav(t, tc.b, http.MethodPost, s.base+"/authorize/consent", tc.form, tc.hdr)
				atkErrorPage(t, http.StatusForbidden, st, h, page)
			})
		}
		// The legitimate post, after all of those, still goes upstream.
		st, h, page = atkNav(t, u.b, http.MethodPost, s.base+"/authorize/consent", form(tx, csrf), good)
		if st != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), s.base+"/dev-idp/authorize") {
			t.Fatalf("the legitimate approval: %d Location %q: %s", st, h.Get("Location"), pageText(page))
		}
	})
}

// ---------------------------------------------------------------------------
// 3. Deny.

// TestProxyAttackDeny: Deny sends the browser back to the client with
// access_denied, state and iss, and never to the upstream.
func TestProxyAttackDeny(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t)
	c := s.register(t, nil)
	u := s.newUser(t)
	var visited []string
	u.b.logf = func(format string, args ...any) { visited = append(visited, fmt.Sprintf(format, args...)) }
	u.press = "deny"
	authURL, _ := atkAuth(c, "deny-state", atkRead, nil)
	q, err := u.authorize(t.Context(), authURL, c.redirect)
	if err != nil {
		t.Fatal(err)
	}
	atkWantOAuthError(t, q, "access_denied", "deny-state", s.base)
	for _, v := range visited {
		if strings.Contains(v, "/dev-idp/") {
			t.Errorf("the browser went upstream after Deny: %s", v)
		}
	}
	// Deny remembers nothing: the next attempt shows the consent page, and
	// Allow then works.
	u.press = "approve"
	if tok := c.login(t, u, atkRead); atkStr(tok, "access_token") == "" {
		t.Fatalf("approve after deny: %v", tok)
	}
}

// ---------------------------------------------------------------------------
// 4. Token passthrough.

// TestProxyAttackTokenPassthrough: /mcp accepts only access tokens we
// issued for this resource: not another issuer's, not another audience's,
// not one signed by another key, not a tampered one, not an upstream-style
// opaque token.
func TestProxyAttackTokenPassthrough(t *testing.T) {
	t.Parallel()
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := token.NewKeyRing(key)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := token.MarshalKeyRing(ring)
	if err != nil {
		t.Fatal(err)
	}
	ringFile := filepath.Join(t.TempDir(), "ring.json")
	if err := os.WriteFile(ringFile, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startDevProxy(t, "--signing-key-file", ringFile, "--clock-skew", "0s")
	c := s.register(t, nil)
	real := atkStr(c.login(t, s.newUser(t), atkRead), "access_token")
	if st, _ := atkMCP(t, s, real); st != http.StatusOK {
		t.Fatalf("our own token: %d", st)
	}

	_, realClaims, _ := atkJWT(t, real)
	realGrant, _ := realClaims["gid"].(string)
	if realGrant == "" {
		t.Fatal("our token has no gid claim")
	}
	otherKey, _ := token.GenerateKey()
	otherRing, _ := token.NewKeyRing(otherKey)
	mint := func(iss, aud string, r *token.KeyRing, now func() time.Time) string {
		t.Helper()
		is, err := token.NewIssuer(r, &token.IssuerOptions{Issuer: iss, Audience: aud, Now: now, AccessTokenLifetime: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		// The real token's grant: a token whose grant the server does not
		// know is refused for that alone (a Redis restarted empty), which
		// must not be why the forged ones below are refused.
		tok, _, _, err := is.MintAccessToken("dev|mallory", c.id, []string{atkRead}, realGrant)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// Control: with our key, issuer and audience a minted token passes, so
	// each refusal below is for the one thing that differs.
	if st, www := atkMCP(t, s, mint(s.base, s.resource, ring, nil)); st != http.StatusOK {
		t.Fatalf("control token (our key, issuer, audience): %d %s", st, www)
	}

	hdr, claims, parts := atkJWT(t, real)
	tamper := func(change func(map[string]any)) string {
		c := map[string]any{}
		for k, v := range claims {
			c[k] = v
		}
		change(c)
		return parts[0] + "." + atkB64JSON(c) + "." + parts[2]
	}
	hs256 := func(h map[string]any) string {
		signing := atkB64JSON(h) + "." + parts[1]
		m := hmac.New(sha256.New, []byte("guessable"))
		m.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	past := func() time.Time { return time.Now().Add(-time.Hour) }
	future := func() time.Time { return time.Now().Add(time.Hour) }
	opaque := make([]byte, 32)
	rand.Read(opaque)
	for _, tc := range []struct{ name, token string }{
		{"another audience, our key", mint(s.base, "https://other.example/mcp", ring, nil)},
		{"the authorization server as audience", mint(s.base, s.base, ring, nil)},
		{"another issuer, our key", mint("https://evil.example", s.resource, ring, nil)},
		{"the upstream as issuer", mint(s.base+"/dev-idp", s.resource, ring, nil)},
		{"another key", mint(s.base, s.resource, otherRing, nil)},
		{"expired", mint(s.base, s.resource, ring, past)},
		{"not yet valid", mint(s.base, s.resource, ring, future)},
		{"our token with aud tampered", tamper(func(c map[string]any) { c["aud"] = "https://other.example/mcp" })},
		{"our token with scope tampered", tamper(func(c map[string]any) { c["scope"] = atkRead + " " + atkWrite })},
		{"our token with exp tampered", tamper(func(c map[string]any) { c["exp"] = time.Now().Add(24 * time.Hour).Unix() })},
		{"alg none", atkB64JSON(map[string]any{"alg": "none", "typ": "at+jwt"}) + "." + parts[1] + "."},
		{"HS256 with our kid", hs256(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": hdr["kid"]})},
		{"upstream-style opaque token", base64.RawURLEncoding.EncodeToString(opaque)},
		{"a refresh-token-shaped value", "rt_" + base64.RawURLEncoding.EncodeToString(opaque)},
		{"our key, a grant the server does not know", func() string {
			is, err := token.NewIssuer(ring, &token.IssuerOptions{Issuer: s.base, Audience: s.resource, AccessTokenLifetime: 5 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			tok, _, _, err := is.MintAccessToken("dev|mallory", c.id, []string{atkRead}, "unknown-"+rand.Text())
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) { atkWantInvalidToken(t, s, tc.name, tc.token) })
	}
	// Our real token still works after all of that.
	if st, _ := atkMCP(t, s, real); st != http.StatusOK {
		t.Fatalf("our own token, again: %d", st)
	}
}

// ---------------------------------------------------------------------------
// 5. Redirect URI tricks.

// TestProxyAttackRedirectURI: dangerous redirect URIs are refused at
// registration with invalid_redirect_uri; at /authorize an unregistered one
// gets an HTML error page and never a redirect, except for the port of a
// loopback redirect (RFC 8252 §7.3).
func TestProxyAttackRedirectURI(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t)

	t.Run("no open redirect through an authorization error", func(t *testing.T) {
		// Anyone can register their own site as a redirect URI, then send
		// users to /authorize with a bad parameter: the answer must not be
		// a redirect there, which would need no user action.
		evil := s.register(t, map[string]any{"client_name": "landing", "redirect_uris": []string{"https://evil.example/landing"},
			"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code"}})
		for _, tc := range []struct {
			name, code string
			extra      url.Values
		}{
			{"response_type x", "unsupported_response_type", url.Values{"response_type": {"x"}}},
			{"plain PKCE", "invalid_request", url.Values{"code_challenge_method": {"plain"}}},
			{"unknown scope", "invalid_scope", url.Values{"scope": {"admin"}}},
			{"another resource", "invalid_target", url.Values{"resource": {"https://other.example/mcp"}}},
		} {
			authURL, _ := atkAuth(evil, "x", atkRead, tc.extra)
			for _, site := range []string{"none", "cross-site"} {
				st, h, page := atkNav(t, nil, http.MethodGet, authURL, nil, map[string]string{"Sec-Fetch-Site": site})
				atkRefusedRequest(t, st, h, page, tc.code)
			}
		}
	})

	t.Run("register", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			uris []string
		}{
			{"javascript", []string{"javascript:alert(1)"}},
			{"javascript with slashes", []string{"javascript://example.com/%0Aalert(1)"}},
			{"JAVASCRIPT", []string{"JAVASCRIPT:alert(1)"}},
			{"mixed case", []string{"JaVaScRiPt:alert(1)"}},
			{"data", []string{"data:text/html,<script>alert(1)</script>"}},
			{"vbscript", []string{"vbscript:msgbox(1)"}},
			{"file", []string{"file:///etc/passwd"}},
			{"non-loopback http", []string{"http://evil.example/cb"}},
			{"http on a loopback look-alike", []string{"http://127.0.0.1.evil.example/cb"}},
			{"userinfo", []string{"https://good.example@evil.example/cb"}},
			{"backslash", []string{`https://good.example\@evil.example/cb`}},
			{"fragment", []string{"https://good.example/cb#frag"}},
			{"empty fragment", []string{"https://good.example/cb#"}},
			{"trailing space", []string{"https://good.example/cb "}},
			{"newline", []string{"https://good.example/cb\nLocation: https://evil.example"}},
			{"tab", []string{"https://good.example/\tcb"}},
			{"wildcard host", []string{"https://*.good.example/cb"}},
			{"wildcard path", []string{"https://good.example/*"}},
			{"relative", []string{"/cb"}},
			{"scheme-relative", []string{"//evil.example/cb"}},
			{"empty string", []string{""}},
			{"empty list", []string{}},
			{"one good, one bad", []string{"https://good.example/cb", "javascript:alert(1)"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, out := atkRegisterRaw(t, s, map[string]any{"client_name": "x", "redirect_uris": tc.uris, "token_endpoint_auth_method": "none"})
				if st != http.StatusBadRequest || atkStr(out, "error") != "invalid_redirect_uri" || atkStr(out, "error_description") == "" || out["client_id"] != nil {
					t.Errorf("register %q: %d %v, want 400 invalid_redirect_uri with a description", tc.uris, st, out)
				}
			})
		}
		// The legitimate registrations.
		for _, uris := range [][]string{{"https://good.example/cb"}, {"http://127.0.0.1:9/cb"}, {"http://[::1]/cb"}, {"cursor://anysphere.cursor-retrieval/oauth/callback"}} {
			if st, out := atkRegisterRaw(t, s, map[string]any{"redirect_uris": uris, "token_endpoint_auth_method": "none"}); st != http.StatusCreated {
				t.Errorf("register %q: %d %v", uris, st, out)
			}
		}
	})

	t.Run("authorize", func(t *testing.T) {
		c := s.register(t, map[string]any{"client_name": "Redirects", "token_endpoint_auth_method": "none", "application_type": "native",
			"redirect_uris": []string{"http://127.0.0.1:9/cb", "https://app.example/cb"}})
		for _, tc := range []struct {
			name, redirect string
			extra          url.Values
		}{
			{"different path", "https://app.example/cb2", nil},
			{"path prefix", "https://app.example/c", nil},
			{"path suffix", "https://app.example/cb/evil", nil},
			{"different host", "https://evil.example/cb", nil},
			{"subdomain", "https://evil.app.example/cb", nil},
			{"added query", "https://app.example/cb?x=1", nil},
			{"host case change", "https://APP.example/cb", nil},
			{"scheme case change", "HTTPS://app.example/cb", nil},
			{"path case change", "https://app.example/CB", nil},
			{"trailing slash", "https://app.example/cb/", nil},
			{"explicit port", "https://app.example:443/cb", nil},
			{"downgraded to http", "http://app.example/cb", nil},
			{"userinfo", "https://app.example@evil.example/cb", nil},
			{"fragment", "https://app.example/cb#x", nil},
			{"encoded path", "https://app.example/%63b", nil},
			{"dot segment", "https://app.example/x/../cb", nil},
			{"loopback, other path", "http://127.0.0.1:9/cb2", nil},
			{"loopback, added query", "http://127.0.0.1:5555/cb?x=1", nil},
			{"loopback, other loopback host", "http://localhost:9/cb", nil},
			{"loopback, trailing slash", "http://127.0.0.1:9/cb/", nil},
			{"loopback, https", "https://127.0.0.1:9/cb", nil},
			{"javascript", "javascript:alert(1)", nil},
			{"header injection", "https://app.example/cb\r\nLocation: https://evil.example", nil},
			// An error that would normally be redirected (PKCE) must not be
			// sent to an unregistered URI either.
			{"unregistered plus a PKCE error", "https://evil.example/cb", url.Values{"code_challenge_method": {"plain"}}},
			{"unregistered plus an unknown response_type", "https://evil.example/cb", url.Values{"response_type": {"token"}}},
			// Parameter pollution: a registered value next to an evil one.
			{"repeated redirect_uri", "https://app.example/cb", url.Values{"redirect_uri": {"https://app.example/cb", "https://evil.example/cb"}}},
			{"repeated client_id", "https://app.example/cb", url.Values{"client_id": {c.id, "someone-else"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				extra := url.Values{"redirect_uri": {tc.redirect}}
				for k, v := range tc.extra {
					extra[k] = v
				}
				authURL, _ := atkAuth(c, "st", atkRead, extra)
				st, h, page := atkNav(t, nil, http.MethodGet, authURL, nil, atkTyped)
				atkErrorPage(t, http.StatusBadRequest, st, h, page)
			})
		}
		for _, tc := range []struct{ name, redirect string }{
			{"exact https", "https://app.example/cb"},
			{"exact loopback", "http://127.0.0.1:9/cb"},
			{"loopback, another port", "http://127.0.0.1:5555/cb"},
			{"loopback, no port", "http://127.0.0.1/cb"},
		} {
			t.Run("allowed: "+tc.name, func(t *testing.T) {
				authURL, _ := atkAuth(c, "st", atkRead, url.Values{"redirect_uri": {tc.redirect}})
				st, h, page := atkNav(t, nil, http.MethodGet, authURL, nil, atkTyped)
				atkConsent(t, st, h, page, "Redirects")
				if !strings.Contains(page, tc.redirect) {
					t.Errorf("the consent page does not show the redirect URI %s", tc.redirect)
				}
			})
		}
		// And the loopback port exception carries through to a code sent to
		// the requested port.
		u := s.newUser(t)
		authURL, verifier := atkAuth(c, "st", atkRead, url.Values{"redirect_uri": {"http://127.0.0.1:5555/cb"}})
		q, err := u.authorize(t.Context(), authURL, "http://127.0.0.1:5555/cb")
		if err != nil {
			t.Fatal(err)
		}
		st, tok, _ := c.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {verifier},
			"redirect_uri": {"http://127.0.0.1:5555/cb"}})
		if st != http.StatusOK {
			t.Fatalf("token for the loopback port exception: %d %v", st, tok)
		}
	})
}

// ---------------------------------------------------------------------------
// 6. PKCE downgrade.

// TestProxyAttackPKCEDowngrade: only S256 PKCE with a well-formed challenge
// starts an authorization, and only the right verifier redeems a code.
func TestProxyAttackPKCEDowngrade(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t)
	c := s.register(t, nil)

	t.Run("authorize", func(t *testing.T) {
		verifier, challenge := pkcePair()
		for _, tc := range []struct {
			name   string
			set    url.Values
			remove []string
		}{
			{"plain", url.Values{"code_challenge_method": {"plain"}, "code_challenge": {verifier}}, nil},
			{"plain with an S256-looking challenge", url.Values{"code_challenge_method": {"plain"}}, nil},
			{"lower-case s256", url.Values{"code_challenge_method": {"s256"}}, nil},
			{"missing method", nil, []string{"code_challenge_method"}},
			{"missing challenge", nil, []string{"code_challenge"}},
			{"missing both", nil, []string{"code_challenge", "code_challenge_method"}},
			{"empty challenge", url.Values{"code_challenge": {""}}, nil},
			{"short challenge", url.Values{"code_challenge": {"abc"}}, nil},
			{"long challenge", url.Values{"code_challenge": {challenge + "A"}}, nil},
			{"padded challenge", url.Values{"code_challenge": {challenge[:42] + "="}}, nil},
			{"standard base64 alphabet", url.Values{"code_challenge": {"+" + challenge[1:]}}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				authURL := c.authURL(challenge, "pk", atkRead, tc.set)
				authURL = atkWithout(t, authURL, tc.remove...)
				st, h, page := atkNav(t, nil, http.MethodGet, authURL, nil, atkTyped)
				atkRefusedRequest(t, st, h, page, "invalid_request")
			})
		}
		// The same request with S256 gets the consent page.
		st, h, page := atkNav(t, nil, http.MethodGet, c.authURL(challenge, "pk", atkRead, nil), nil, atkTyped)
		atkConsent(t, st, h, page, "manual")
	})

	t.Run("token", func(t *testing.T) {
		u := s.newUser(t)
		code, verifier := atkCode(t, c, u, atkRead, nil)
		_, challenge := pkcePair()
		other, _ := pkcePair()
		form := func(v string, with bool) url.Values {
			f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect}}
			if with {
				f.Set("code_verifier", v)
			}
			return f
		}
		// A missing verifier is a missing parameter: refused before the code
		// is looked at.
		st, body, _ := c.token(t, form("", false))
		if st != http.StatusBadRequest || (atkStr(body, "error") != "invalid_request" && atkStr(body, "error") != "invalid_grant") || body["access_token"] != nil {
			t.Errorf("no code_verifier: %d %v, want 400 invalid_request (or invalid_grant)", st, body)
		}
		st, body, _ = c.token(t, form("", true))
		if st != http.StatusBadRequest || body["access_token"] != nil {
			t.Errorf("empty code_verifier: %d %v", st, body)
		}
		// A wrong verifier: invalid_grant, and the code is spent, so a
		// guess cannot be followed by another.
		for i, v := range []string{other, challenge /* "plain": the challenge itself */, verifier[:42], verifier + "x"} {
			st, body, _ := c.token(t, form(v, true))
			atkWantTokenError(t, fmt.Sprintf("wrong verifier %d", i), st, body, http.StatusBadRequest, "invalid_grant")
		}
		st, body, _ = c.token(t, form(verifier, true))
		atkWantTokenError(t, "the right verifier after wrong ones", st, body, http.StatusBadRequest, "invalid_grant")

		// The legitimate exchange of a fresh code.
		code, verifier = atkCode(t, c, u, atkRead, nil)
		if st, tok := atkExchange(t, c, code, verifier); st != http.StatusOK {
			t.Fatalf("the right verifier: %d %v", st, tok)
		}
	})
}

// ---------------------------------------------------------------------------
// 7. Authorization-code replay.

// TestProxyAttackCodeReplay: a code redeems once; a second use fails and
// revokes what the first use issued, and nothing else.
func TestProxyAttackCodeReplay(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t)
	c := s.register(t, nil)
	u := s.newUser(t)

	// An unrelated grant of the same user, which must survive (with
	// another client: a sign-in with c again replaces c's earlier grant).
	bc := s.register(t, nil)
	bystander := bc.login(t, u, atkRead)

	code, verifier := atkCode(t, c, u, atkRead, nil)
	st, first := atkExchange(t, c, code, verifier)
	if st != http.StatusOK || atkStr(first, "access_token") == "" || atkStr(first, "refresh_token") == "" {
		t.Fatalf("first exchange: %d %v", st, first)
	}
	if st, _ := atkMCP(t, s, atkStr(first, "access_token")); st != http.StatusOK {
		t.Fatalf("the first exchange's access token: %d", st)
	}
	st, second := atkExchange(t, c, code, verifier)
	atkWantTokenError(t, "replayed code", st, second, http.StatusBadRequest, "invalid_grant")

	atkWantInvalidToken(t, s, "the access token of a replayed code", atkStr(first, "access_token"))
	st, body := atkRefresh(t, c, atkStr(first, "refresh_token"))
	atkWantTokenError(t, "the refresh token of a replayed code", st, body, http.StatusBadRequest, "invalid_grant")
	// A third try is refused too.
	st, third := atkExchange(t, c, code, verifier)
	atkWantTokenError(t, "third use", st, third, http.StatusBadRequest, "invalid_grant")

	if st, _ := atkMCP(t, s, atkStr(bystander, "access_token")); st != http.StatusOK {
		t.Errorf("another grant's access token after the replay: %d", st)
	}

	// A code is bound to its client and redirect URI.
	other := s.register(t, nil)
	code, verifier = atkCode(t, c, u, atkRead, nil)
	st, body = atkExchange(t, other, code, verifier)
	atkWantTokenError(t, "another client's code", st, body, http.StatusBadRequest, "invalid_grant")
	code, verifier = atkCode(t, c, u, atkRead, nil)
	st, body, _ = c.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {"http://127.0.0.1:9/other"}})
	atkWantTokenError(t, "code with another redirect_uri", st, body, http.StatusBadRequest, "invalid_grant")
	// An access token is no refresh token.
	st, body = atkRefresh(t, c, atkStr(bystander, "access_token"))
	atkWantTokenError(t, "access token as refresh token", st, body, http.StatusBadRequest, "invalid_grant")
	if st, body := atkRefresh(t, bc, atkStr(bystander, "refresh_token")); st != http.StatusOK {
		t.Errorf("another grant's refresh after the replay: %d %v", st, body)
	}
}

// ---------------------------------------------------------------------------
// 8. Refresh-token rotation.

// TestProxyAttackRefreshRotation: refresh tokens rotate; the previous one
// is honoured for the same client within the grace window only; a reuse
// after it kills the family; another client can neither use nor kill it.
func TestProxyAttackRefreshRotation(t *testing.T) {
	t.Parallel()
	const grace = 2 * time.Second
	// The authorization server's clock runs ahead by skip: the test moves
	// it past the grace window instead of waiting for the window to pass.
	var skip atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skip.Load())) }
	ln, base := reserve(t)
	s := startProxyClock(t, ln, base, nil, now, "--refresh-grace", grace.String(), "--access-token-lifetime", "5s", "--clock-skew", "0s")
	c := s.register(t, nil)
	thief := s.register(t, nil)
	u := s.newUser(t)

	t.Run("reuse after grace kills the family", func(t *testing.T) {
		tok0 := c.login(t, u, atkRead)
		rt0 := atkStr(tok0, "refresh_token")
		st, tok1 := atkRefresh(t, c, rt0)
		rt1 := atkStr(tok1, "refresh_token")
		if st != http.StatusOK || rt1 == "" || rt1 == rt0 || atkStr(tok1, "access_token") == "" {
			t.Fatalf("first rotation: %d %v", st, tok1)
		}
		rotated := time.Now()
		// A retry of rt0 (a lost response) by the same client, in grace.
		st, tok2 := atkRefresh(t, c, rt0)
		if st != http.StatusOK || atkStr(tok2, "access_token") == "" {
			if took := time.Since(rotated); took > grace {
				// Not a skip: CI must see that the case went untested.
				t.Fatalf("the retry came %v after the rotation, past the %v grace window: the machine was too slow for this case", took, grace)
			}
			t.Fatalf("retry of the previous token within grace: %d %v", st, tok2)
		}
		newest := slices.DeleteFunc([]string{rt1, atkStr(tok2, "refresh_token")}, func(s string) bool { return s == "" })
		latestAccess := atkStr(tok2, "access_token")
		if st, _ := atkMCP(t, s, latestAccess); st != http.StatusOK {
			t.Fatalf("the latest access token: %d", st)
		}

		skip.Add(int64(grace + 300*time.Millisecond))
		st, body := atkRefresh(t, c, rt0)
		atkWantTokenError(t, "the previous token after grace", st, body, http.StatusBadRequest, "invalid_grant")
		for i, rt := range newest {
			st, body := atkRefresh(t, c, rt)
			atkWantTokenError(t, fmt.Sprintf("newer refresh token %d after the family was killed", i), st, body, http.StatusBadRequest, "invalid_grant")
		}
		atkWantInvalidToken(t, s, "the latest access token after the family was killed", latestAccess)
		atkWantInvalidToken(t, s, "the first access token after the family was killed", atkStr(tok0, "access_token"))
	})

	t.Run("another client", func(t *testing.T) {
		tok0 := c.login(t, u, atkRead)
		rt0 := atkStr(tok0, "refresh_token")
		st, body := atkRefresh(t, thief, rt0)
		atkWantTokenError(t, "another client's refresh token", st, body, http.StatusBadRequest, "invalid_grant")
		st, tok1 := atkRefresh(t, c, rt0)
		if st != http.StatusOK {
			t.Fatalf("the rightful client after the thief: %d %v", st, tok1)
		}
		// The thief with the previous token, in grace: still refused, and
		// still without harm.
		st, body = atkRefresh(t, thief, rt0)
		atkWantTokenError(t, "another client, previous token in grace", st, body, http.StatusBadRequest, "invalid_grant")
		st, body = atkRefresh(t, thief, atkStr(tok1, "refresh_token"))
		atkWantTokenError(t, "another client, current token", st, body, http.StatusBadRequest, "invalid_grant")
		st, tok2 := atkRefresh(t, c, atkStr(tok1, "refresh_token"))
		if st != http.StatusOK {
			t.Fatalf("the rightful client after the thief, again: %d %v", st, tok2)
		}
		if st, _ := atkMCP(t, s, atkStr(tok2, "access_token")); st != http.StatusOK {
			t.Fatalf("the rightful client's access token: %d", st)
		}
	})

	t.Run("a refresh cannot widen scopes", func(t *testing.T) {
		tok := c.login(t, u, atkRead)
		st, body, _ := c.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {atkStr(tok, "refresh_token")}, "scope": {atkRead + " " + atkWrite}})
		atkWantTokenError(t, "widening refresh", st, body, http.StatusBadRequest, "invalid_scope")
	})
}

// ---------------------------------------------------------------------------
// 9. Mix-up.

// TestProxyAttackMixUp: iss in every authorization response that reaches
// the client, a code or an error (RFC 9207), advertised in metadata, whose
// issuer is our base URL byte for byte. An invalid request is not such a
// response: it gets an error page naming the error, never a redirect.
func TestProxyAttackMixUp(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		resp, err := http.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var md map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &md) != nil {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
		}
		if md["issuer"] != s.base || strings.HasSuffix(atkStr(md, "issuer"), "/") {
			t.Errorf("%s: issuer %q, want %q byte for byte", path, md["issuer"], s.base)
		}
		if md["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("%s: authorization_response_iss_parameter_supported = %v", path, md["authorization_response_iss_parameter_supported"])
		}
		if m, _ := md["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
			t.Errorf("%s: code_challenge_methods_supported = %v, want [S256]", path, md["code_challenge_methods_supported"])
		}
		for _, ep := range []string{"authorization_endpoint", "token_endpoint", "registration_endpoint"} {
			if !strings.HasPrefix(atkStr(md, ep), s.base+"/") {
				t.Errorf("%s: %s = %v", path, ep, md[ep])
			}
		}
	}

	c := s.register(t, nil)
	t.Run("success", func(t *testing.T) {
		authURL, _ := atkAuth(c, "ok", atkRead, nil)
		q, err := s.newUser(t).authorize(t.Context(), authURL, c.redirect)
		if err != nil {
			t.Fatal(err)
		}
		if q.Get("code") == "" || q.Get("iss") != s.base || q.Get("state") != "ok" {
			t.Errorf("success redirect %v: want code, state ok, iss %s", q, s.base)
		}
	})
	for _, tc := range []struct {
		name, code string
		extra      url.Values
	}{
		{"unsupported response_type", "unsupported_response_type", url.Values{"response_type": {"token"}}},
		{"PKCE", "invalid_request", url.Values{"code_challenge_method": {"plain"}}},
		{"unknown scope", "invalid_scope", url.Values{"scope": {"admin"}}},
		{"another resource", "invalid_target", url.Values{"resource": {"https://other.example/mcp"}}},
		{"two resources", "invalid_target", url.Values{"resource": {s.resource, "https://other.example/mcp"}}},
	} {
		t.Run("error: "+tc.name, func(t *testing.T) {
			authURL, _ := atkAuth(c, "err", atkRead, tc.extra)
			st, h, page := atkNav(t, nil, http.MethodGet, authURL, nil, atkTyped)
			atkRefusedRequest(t, st, h, page, tc.code)
		})
	}
	t.Run("error: consent denied", func(t *testing.T) {
		u := s.newUser(t)
		u.press = "deny"
		authURL, _ := atkAuth(c, "err", atkRead, nil)
		q, err := u.authorize(t.Context(), authURL, c.redirect)
		if err != nil {
			t.Fatal(err)
		}
		atkWantOAuthError(t, q, "access_denied", "err", s.base)
	})
	t.Run("error: upstream sign-in denied", func(t *testing.T) {
		// Allow on our page, Deny at the upstream: our callback gets
		// error=access_denied and passes it on, with our iss.
		u := s.newUser(t)
		authURL, _ := atkAuth(c, "err", atkRead, nil)
		up, err := u.b.run(t.Context(), authURL, s.base+"/dev-idp/", nil, "approve")
		if err != nil {
			t.Fatal(err)
		}
		got, err := u.b.run(t.Context(), up.String(), c.redirect, nil, "deny")
		if err != nil {
			t.Fatal(err)
		}
		atkWantOAuthError(t, got.Query(), "access_denied", "err", s.base)
	})
}

// ---------------------------------------------------------------------------
// 10. Resource indicators (RFC 8707).

// TestProxyAttackResource: we issue tokens only for our MCP endpoint (a
// trailing slash tolerated), with aud exactly that endpoint.
func TestProxyAttackResource(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t)
	c := s.register(t, nil)
	u := s.newUser(t)
	for _, res := range [][]string{
		{"https://other.example/mcp"},
		{s.base},
		{s.base + "/"},
		{s.base + "/mcp/other"},
		{s.base + "/mcpx"},
		{strings.Replace(s.resource, "127.0.0.1", "localhost", 1)},
		{s.base + "/dev-idp"},
		{s.resource, "https://other.example/mcp"},
	} {
		t.Run("authorize "+strings.Join(res, " "), func(t *testing.T) {
			authURL, _ := atkAuth(c, "rs", atkRead, url.Values{"resource": res})
			st, h, page := atkNav(t, nil, http.MethodGet, authURL, nil, atkTyped)
			atkRefusedRequest(t, st, h, page, "invalid_target")
		})
	}

	t.Run("token", func(t *testing.T) {
		code, verifier := atkCode(t, c, u, atkRead, nil)
		for _, res := range []string{"https://other.example/mcp", s.base} {
			st, body, _ := c.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
				"redirect_uri": {c.redirect}, "resource": {res}})
			atkWantTokenError(t, "code for "+res, st, body, http.StatusBadRequest, "invalid_target")
		}
		tok := c.login(t, u, atkRead)
		st, body, _ := c.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {atkStr(tok, "refresh_token")}, "resource": {"https://other.example/mcp"}})
		atkWantTokenError(t, "refresh for another resource", st, body, http.StatusBadRequest, "invalid_target")
	})

	t.Run("trailing slash accepted, aud exact", func(t *testing.T) {
		code, verifier := atkCode(t, c, u, atkRead, url.Values{"resource": {s.resource + "/"}})
		st, tok, _ := c.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
			"redirect_uri": {c.redirect}, "resource": {s.resource + "/"}})
		if st != http.StatusOK {
			t.Fatalf("token with the trailing-slash resource: %d %v", st, tok)
		}
		wantAud := func(what, at string) {
			t.Helper()
			_, claims, _ := atkJWT(t, at)
			switch aud := claims["aud"].(type) {
			case string:
				if aud != s.resource {
					t.Errorf("%s: aud %q, want %q exactly", what, aud, s.resource)
				}
			case []any:
				if len(aud) != 1 || aud[0] != s.resource {
					t.Errorf("%s: aud %v, want [%q] exactly", what, aud, s.resource)
				}
			default:
				t.Errorf("%s: aud %v", what, claims["aud"])
			}
			if claims["iss"] != s.base {
				t.Errorf("%s: iss %v, want %s", what, claims["iss"], s.base)
			}
		}
		wantAud("code exchange", atkStr(tok, "access_token"))
		st, ref := atkRefresh(t, c, atkStr(tok, "refresh_token"))
		if st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, ref)
		}
		wantAud("refresh", atkStr(ref, "access_token"))
		if st, _ := atkMCP(t, s, atkStr(tok, "access_token")); st != http.StatusOK {
			t.Errorf("the token at /mcp: %d", st)
		}
	})
}

// ---------------------------------------------------------------------------
// 11. SSRF through client metadata documents.

// TestProxyAttackCIMDSSRF: a client_id URL naming an internal address is
// refused at connection time, quickly, with an error page and no redirect;
// a loopback document (allowed on a loopback listener, for development)
// still works.
func TestProxyAttackCIMDSSRF(t *testing.T) {
	t.Parallel()
	s, logs := atkStartLoggedProxy(t)
	_, challenge := pkcePair()
	authorize := func(clientID string) string {
		q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {"http://127.0.0.1:9/cb"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"x"}, "resource": {s.resource}, "scope": {atkRead}}
		return s.base + "/authorize?" + q.Encode()
	}
	for _, tc := range []struct {
		clientID string
		refused  bool // refused by the address check (logged as such)
	}{
		{"https://169.254.169.254/latest/meta-data/iam", true},
		{"https://10.0.0.1/client.json", true},
		{"https://[::ffff:10.0.0.1]/c", true},
		{"https://[::ffff:a9fe:a9fe]/c", true},
		{"https://[64:ff9b::a00:1]/c", true},
		{"https://192.168.1.1/c", true},
		{"https://172.16.0.1/c", true},
		{"https://100.64.0.1/c", true},
		{"https://[fd00::1]/c", true},
		{"https://[fe80::1]/c", true},
		{"https://0.0.0.0/c", true},
		{"https://localhost.localdomain/c", false},
		{"https://2130706433/c", false},
		{"http://169.254.169.254/latest/meta-data/iam", false},
		{"http://10.0.0.1/client.json", false},
		{"https://user@10.0.0.1/c", false},
	} {
		t.Run(tc.clientID, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			st, h, page := atkNav(t, nil, http.MethodGet, authorize(tc.clientID), nil, atkTyped)
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("took %v", d)
			}
			atkErrorPage(t, http.StatusBadRequest, st, h, page)
			if tc.refused {
				refused := false
				for _, line := range strings.Split(logs.String(), "\n") {
					if strings.Contains(line, tc.clientID) && strings.Contains(line, "address refused") {
						refused = true
					}
				}
				if !refused {
					t.Errorf("no log line says the address of %s was refused at connection time", tc.clientID)
				}
			}
		})
	}

	t.Run("loopback document", func(t *testing.T) {
		var docURL string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"client_id": docURL, "client_name": "Loopback Doc App",
				"redirect_uris": []string{"http://127.0.0.1:9/cb", "http://127.0.0.1:9/other"}, "token_endpoint_auth_method": "none"})
		}))
		t.Cleanup(srv.Close)
		docURL = srv.URL + "/client.json"
		st, h, page := atkNav(t, nil, http.MethodGet, authorize(docURL), nil, atkTyped)
		atkConsent(t, st, h, page, "Loopback Doc App")

		// Remembered consent of a metadata-document client is keyed by
		// client id AND redirect URI, and never applies cross-site.
		c := &manualClient{s: s, id: docURL, redirect: "http://127.0.0.1:9/cb"}
		u := s.newUser(t)
		if tok := c.login(t, u, atkRead); atkStr(tok, "access_token") == "" {
			t.Fatalf("CIMD client login: %v", tok)
		}
		again, _ := atkAuth(c, "x", atkRead, nil)
		st, h, page = atkNav(t, u.b, http.MethodGet, again, nil, atkTyped)
		if st != http.StatusFound || !strings.HasPrefix(h.Get("Location"), s.base+"/dev-idp/authorize") {
			t.Errorf("remembered CIMD approval: %d %q: %s", st, h.Get("Location"), pageText(page))
		}
		st, h, page = atkNav(t, u.b, http.MethodGet, again, nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
		atkConsent(t, st, h, page, "Loopback Doc App")
		other, _ := atkAuth(c, "x", atkRead, url.Values{"redirect_uri": {"http://127.0.0.1:9/other"}})
		st, h, page = atkNav(t, u.b, http.MethodGet, other, nil, atkTyped)
		atkConsent(t, st, h, page, "Loopback Doc App")
	})
}

// ---------------------------------------------------------------------------
// 12. Secrets in logs and error bodies.

// TestProxyAttackSecretsNotLogged runs a whole life cycle (registration of a
// confidential client, consent, upstream login, code, token, refresh, MCP
// call, introspection, revocation) plus failing requests that carry
// secrets, with the server's debug log captured, and checks that no secret
// the client side saw appears in the log or in any error response.
func TestProxyAttackSecretsNotLogged(t *testing.T) {
	t.Parallel()
	s, logs := atkStartLoggedProxy(t)
	ctx := t.Context()
	secrets := map[string]string{}
	add := func(name, v string) {
		if len(v) < 16 {
			t.Fatalf("secret %s is too short to look for: %q", name, v)
		}
		secrets[name] = v
	}
	var errorBodies []string
	record := func(what string, status int, h http.Header, body string) {
		if status >= 400 || h.Get("Location") != "" && strings.Contains(h.Get("Location"), "error=") {
			errorBodies = append(errorBodies, what+": "+h.Get("Location")+" "+h.Get("WWW-Authenticate")+" "+body)
		}
	}
	post := func(what, path, body string, basic *[2]string) (int, map[string]any) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic != nil {
			req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		record(what, resp.StatusCode, resp.Header, string(raw))
		var out map[string]any
		json.Unmarshal(raw, &out)
		return resp.StatusCode, out
	}

	c := s.register(t, map[string]any{"client_name": "Confidential", "redirect_uris": []string{"http://127.0.0.1:9/cb"},
		"token_endpoint_auth_method": "client_secret_basic", "grant_types": []string{"authorization_code", "refresh_token"}})
	add("client secret", c.secret)
	creds := &[2]string{c.id, c.secret}
	wrong := "wrong-" + rand.Text()
	add("wrong client secret", wrong)

	u := s.newUser(t)
	authURL, verifier := atkAuth(c, "st", atkRead, nil)
	add("PKCE verifier", verifier)
	// The consent page's CSRF token.
	st, h, page := atkNav(t, u.b, http.MethodGet, authURL, nil, atkTyped)
	_, csrf := atkConsent(t, st, h, page, "Confidential")
	add("csrf", csrf)
	// Consent and the upstream login, up to our callback.
	cb, err := u.b.run(ctx, authURL, s.base+"/callback", nil, "approve")
	if err != nil {
		t.Fatal(err)
	}
	add("upstream code", cb.Query().Get("code"))
	_, stateSecret, _ := strings.Cut(cb.Query().Get("state"), ".")
	add("upstream state secret", stateSecret)
	got, err := u.b.run(ctx, cb.String(), c.redirect, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	code := got.Query().Get("code")
	add("code", code)
	baseURL, _ := url.Parse(s.base)
	for _, ck := range u.b.client.Jar.Cookies(baseURL) {
		add("cookie "+ck.Name, ck.Value)
		parts := strings.Split(ck.Value, ".")
		add("cookie "+ck.Name+" mac", parts[len(parts)-1])
		if ck.Name == "__Host-remotemcp-browser" {
			add("browser nonce", parts[0])
		}
	}
	if _, ok := secrets["cookie __Host-remotemcp-user"]; !ok {
		t.Fatalf("the browser has no user cookie: %v", u.b.client.Jar.Cookies(baseURL))
	}

	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {c.redirect}}.Encode()
	if st, _ := post("token, wrong secret", "/token", exchange, &[2]string{c.id, wrong}); st != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", st)
	}
	if st, _ := post("token, secret in the body too", "/token", exchange+"&client_secret="+url.QueryEscape(c.secret), creds); st != http.StatusBadRequest {
		t.Errorf("two authentication methods: %d", st)
	}
	st, tok := post("token", "/token", exchange, creds)
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, tok)
	}
	add("access token 1", atkStr(tok, "access_token"))
	add("refresh token 1", atkStr(tok, "refresh_token"))
	st, tok2 := post("refresh", "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {atkStr(tok, "refresh_token")}}.Encode(), creds)
	if st != http.StatusOK {
		t.Fatalf("refresh: %d %v", st, tok2)
	}
	at2, rt2 := atkStr(tok2, "access_token"), atkStr(tok2, "refresh_token")
	add("access token 2", at2)
	add("refresh token 2", rt2)
	if st, _ := atkMCP(t, s, at2); st != http.StatusOK {
		t.Fatalf("/mcp: %d", st)
	}
	if st, out := post("introspect", "/introspect", url.Values{"token": {at2}}.Encode(), creds); st != http.StatusOK || out["active"] != true {
		t.Errorf("introspect: %d %v", st, out)
	}

	// Failing requests that carry secrets.
	bogusAccess := "bogus-access-" + rand.Text()
	bogusRefresh := "bogus-refresh-" + rand.Text()
	add("bogus access token", bogusAccess)
	add("bogus refresh token", bogusRefresh)
	for _, tok := range []string{bogusAccess, secrets["refresh token 1"] /* an opaque token at /mcp */} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.resource, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		record("/mcp with a bad token", resp.StatusCode, resp.Header, string(raw))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/mcp with a bad token: %d", resp.StatusCode)
		}
	}
	post("refresh, bogus", "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bogusRefresh}}.Encode(), creds)
	post("refresh, spent token", "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {secrets["refresh token 1"]}, "code_verifier": {verifier}}.Encode(), &[2]string{c.id, wrong})
	post("token, verifier in the query", "/token?code_verifier="+verifier, exchange, creds)
	post("token, repeated code", "/token", exchange+"&code="+code, creds)
	// CSRF failure with the real token from another browser.
	{
		other := s.newUser(t)
		atkNav(t, other.b, http.MethodGet, authURL, nil, atkTyped)
		st, h, page := atkNav(t, other.b, http.MethodPost, s.base+"/authorize/consent", url.Values{"tx": {"x"}, "csrf": {csrf}, "decision": {"approve"}},
			map[string]string{"Origin": s.base, "Sec-Fetch-Site": "same-origin"})
		record("consent, stolen csrf", st, h, page)
	}
	// The callback again (spent), and from another browser.
	{
		st, h, page := atkNav(t, nil, http.MethodGet, cb.String(), nil, atkTyped)
		record("spent callback", st, h, page)
	}
	if st, _ := post("revoke", "/revoke", url.Values{"token": {rt2}, "token_type_hint": {"refresh_token"}}.Encode(), creds); st != http.StatusOK {
		t.Errorf("revoke: %d", st)
	}
	post("revoke, wrong secret", "/revoke", url.Values{"token": {at2}}.Encode(), &[2]string{c.id, wrong})
	atkWantInvalidToken(t, s, "the revoked grant's access token", at2)
	// The code replayed, after everything.
	post("code replay", "/token", exchange, creds)

	log := logs.String()
	for _, want := range []string{"consent approved", "signed in", "token refused", "authorization code replayed"} {
		if !strings.Contains(log, want) {
			t.Errorf("the captured log lacks %q: is the capture working?\n%s", want, log)
		}
	}
	if len(errorBodies) < 8 {
		t.Errorf("only %d error responses recorded", len(errorBodies))
	}
	for name, v := range secrets {
		if strings.Contains(log, v) {
			t.Errorf("the log contains the %s", name)
		}
		for _, b := range errorBodies {
			if strings.Contains(b, v) {
				t.Errorf("an error response contains the %s: %.300s", name, b)
			}
		}
	}
	if t.Failed() && !testing.Verbose() {
		t.Logf("captured log:\n%s", log)
	}
}

// ---------------------------------------------------------------------------
// 13. Token, revocation and introspection endpoints: bad input.

// TestProxyAttackTokenEndpoints: malformed and misdirected requests to
// /token, /revoke and /introspect are refused with the right OAuth errors,
// and revocation and introspection only ever reach the caller's own tokens.
func TestProxyAttackTokenEndpoints(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t)
	pub := s.register(t, nil)
	conf := s.register(t, map[string]any{"client_name": "Conf", "redirect_uris": []string{"http://127.0.0.1:9/cb"},
		"token_endpoint_auth_method": "client_secret_basic", "grant_types": []string{"authorization_code", "refresh_token"}})
	post := s.register(t, map[string]any{"client_name": "Post", "redirect_uris": []string{"http://127.0.0.1:9/cb"},
		"token_endpoint_auth_method": "client_secret_post", "grant_types": []string{"authorization_code", "refresh_token"}})
	if conf.secret == "" || post.secret == "" {
		t.Fatal("confidential clients got no secret")
	}
	u := s.newUser(t)
	pubTok := pub.login(t, u, atkRead)
	confTok := conf.login(t, u, atkRead)
	form := "application/x-www-form-urlencoded"
	refreshPub := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {atkStr(pubTok, "refresh_token")}, "client_id": {pub.id}}
	confCreds := &[2]string{conf.id, conf.secret}

	for _, path := range []string{"/token", "/revoke", "/introspect"} {
		t.Run(path, func(t *testing.T) {
			body := refreshPub.Encode() + "&token=" + url.QueryEscape(atkStr(pubTok, "access_token"))
			for _, tc := range []struct {
				name, ct, body, query string
				basic                 *[2]string
			}{
				{"JSON body", "application/json", `{"grant_type":"refresh_token"}`, "", nil},
				{"text/plain", "text/plain", body, "", nil},
				{"multipart", "multipart/form-data; boundary=x", "--x--", "", nil},
				{"no content type", "", body, "", nil},
				{"repeated parameter", form, body + "&client_id=" + pub.id, "", nil},
				{"parameters in the query", form, body, "client_id=" + pub.id, nil},
				{"oversized body", form, body + "&pad=" + strings.Repeat("a", 20<<10), "", nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					p := path
					if tc.query != "" {
						p += "?" + tc.query
					}
					st, _, out := atkPost(t, s, p, tc.ct, tc.body, tc.basic)
					atkWantTokenError(t, tc.name, st, out, http.StatusBadRequest, "invalid_request")
				})
			}
		})
	}
	// Nothing above touched the public client's grant.
	if st, _ := atkMCP(t, s, atkStr(pubTok, "access_token")); st != http.StatusOK {
		t.Fatalf("after the bad requests: %d", st)
	}

	t.Run("unknown grant types", func(t *testing.T) {
		for _, gt := range []string{"password", "client_credentials", "implicit", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:jwt-bearer"} {
			st, _, out := atkPost(t, s, "/token", form, url.Values{"grant_type": {gt}, "client_id": {pub.id}, "username": {"alice"}, "password": {"x"}}.Encode(), nil)
			atkWantTokenError(t, gt, st, out, http.StatusBadRequest, "unsupported_grant_type")
		}
	})

	t.Run("client authentication", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			body  url.Values
			basic *[2]string
		}{
			{"public client with a secret in the body", url.Values{"client_id": {pub.id}, "client_secret": {"guess"}}, nil},
			{"public client with Basic", nil, &[2]string{pub.id, "guess"}},
			{"public client with an empty Basic secret", nil, &[2]string{pub.id, ""}},
			{"confidential client, wrong secret", nil, &[2]string{conf.id, conf.secret + "x"}},
			{"confidential client, another client's secret", nil, &[2]string{conf.id, post.secret}},
			{"confidential client, no secret", url.Values{"client_id": {conf.id}}, nil},
			{"confidential client, right secret, wrong method", url.Values{"client_id": {conf.id}, "client_secret": {conf.secret}}, nil},
			{"post client, wrong secret", url.Values{"client_id": {post.id}, "client_secret": {"guess"}}, nil},
			{"post client, right secret, wrong method", nil, &[2]string{post.id, post.secret}},
			{"unknown client", url.Values{"client_id": {"no-such-client"}}, nil},
			{"no client at all", url.Values{}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, path := range []string{"/token", "/revoke", "/introspect"} {
					f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {atkStr(confTok, "refresh_token")}, "token": {atkStr(confTok, "access_token")}}
					for k, v := range tc.body {
						f[k] = v
					}
					st, h, out := atkPost(t, s, path, form, f.Encode(), tc.basic)
					atkWantTokenError(t, path, st, out, http.StatusUnauthorized, "invalid_client")
					if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
						t.Errorf("%s: WWW-Authenticate %q, want a Basic challenge", path, h.Get("WWW-Authenticate"))
					}
				}
			})
		}
		// None of that revoked or rotated the confidential client's grant.
		if st, _ := atkMCP(t, s, atkStr(confTok, "access_token")); st != http.StatusOK {
			t.Fatalf("the confidential client's token after the attempts: %d", st)
		}
	})

	t.Run("introspection", func(t *testing.T) {
		intro := func(token string, basic *[2]string, extra url.Values) (int, map[string]any) {
			f := url.Values{"token": {token}}
			for k, v := range extra {
				f[k] = v
			}
			st, _, out := atkPost(t, s, "/introspect", form, f.Encode(), basic)
			return st, out
		}
		st, out := intro(atkStr(pubTok, "access_token"), nil, url.Values{"client_id": {pub.id}})
		atkWantTokenError(t, "introspection by a public client", st, out, http.StatusUnauthorized, "invalid_client")
		if out["active"] != nil {
			t.Errorf("a public client learned about a token: %v", out)
		}

		st, out = intro(atkStr(confTok, "access_token"), confCreds, nil)
		if st != http.StatusOK || out["active"] != true || out["client_id"] != conf.id || out["aud"] != s.resource || out["iss"] != s.base || atkStr(out, "sub") == "" {
			t.Errorf("own token: %d %v", st, out)
		}
		for name, tok := range map[string]string{
			"another client's token": atkStr(pubTok, "access_token"),
			"a refresh token":        atkStr(confTok, "refresh_token"),
			"garbage":                "garbage",
		} {
			st, out := intro(tok, confCreds, nil)
			if st != http.StatusOK || out["active"] != false || len(out) != 1 {
				t.Errorf("%s: %d %v, want 200 {\"active\":false} and nothing else", name, st, out)
			}
		}
		// client_secret_post: the code exchange and the introspection with
		// the secret in the body.
		postAuth := url.Values{"client_id": {post.id}, "client_secret": {post.secret}}
		code, verifier := atkCode(t, post, u, atkRead, nil)
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {post.redirect}}
		for k, v := range postAuth {
			f[k] = v
		}
		st, _, pTok := atkPost(t, s, "/token", form, f.Encode(), nil)
		if st != http.StatusOK {
			t.Fatalf("client_secret_post token: %d %v", st, pTok)
		}
		if st, out := intro(atkStr(pTok, "access_token"), nil, postAuth); st != http.StatusOK || out["active"] != true {
			t.Errorf("client_secret_post introspection of its own token: %d %v", st, out)
		}
	})

	t.Run("revocation", func(t *testing.T) {
		rev := func(token, hint string, body url.Values, basic *[2]string) int {
			f := url.Values{"token": {token}}
			if hint != "" {
				f.Set("token_type_hint", hint)
			}
			for k, v := range body {
				f[k] = v
			}
			st, _, _ := atkPost(t, s, "/revoke", form, f.Encode(), basic)
			return st
		}
		asPub := url.Values{"client_id": {pub.id}}
		for _, tok := range []string{"unknown-token", "a.b.c", strings.Repeat("x", 200)} {
			for _, hint := range []string{"", "access_token", "refresh_token", "bogus_hint"} {
				if st := rev(tok, hint, asPub, nil); st != http.StatusOK {
					t.Errorf("revoke unknown %q (hint %q): %d, want 200", tok, hint, st)
				}
			}
		}
		// Another client's tokens: 200, and nothing revoked. (The victim
		// is a public client of its own: a sign-in of u with pub again
		// would replace pubTok's grant.)
		vc := s.register(t, nil)
		asVc := url.Values{"client_id": {vc.id}}
		victim := vc.login(t, u, atkRead)
		for _, tok := range []string{atkStr(victim, "access_token"), atkStr(victim, "refresh_token")} {
			if st := rev(tok, "", nil, confCreds); st != http.StatusOK {
				t.Errorf("revoke another client's token: %d", st)
			}
		}
		if st, _ := atkMCP(t, s, atkStr(victim, "access_token")); st != http.StatusOK {
			t.Errorf("another client revoked the victim's grant: /mcp %d", st)
		}
		// The owner revokes the refresh token: the grant goes.
		if st := rev(atkStr(victim, "refresh_token"), "refresh_token", asVc, nil); st != http.StatusOK {
			t.Fatalf("revoke: %d", st)
		}
		atkWantInvalidToken(t, s, "access token of a revoked grant", atkStr(victim, "access_token"))
		st, body := atkRefresh(t, vc, atkStr(victim, "refresh_token"))
		atkWantTokenError(t, "revoked refresh token", st, body, http.StatusBadRequest, "invalid_grant")
		// Revoking through the access token takes the refresh token too.
		victim2 := vc.login(t, u, atkRead)
		if st := rev(atkStr(victim2, "access_token"), "access_token", asVc, nil); st != http.StatusOK {
			t.Fatalf("revoke access token: %d", st)
		}
		atkWantInvalidToken(t, s, "revoked access token", atkStr(victim2, "access_token"))
		st, body = atkRefresh(t, vc, atkStr(victim2, "refresh_token"))
		atkWantTokenError(t, "refresh token of a grant revoked through its access token", st, body, http.StatusBadRequest, "invalid_grant")
		// Revocation needs client authentication.
		st2, _, out := atkPost(t, s, "/revoke", form, url.Values{"token": {atkStr(confTok, "refresh_token")}}.Encode(), nil)
		atkWantTokenError(t, "anonymous revocation", st2, out, http.StatusUnauthorized, "invalid_client")
	})

	// The public client's token still works at the end: the refusals
	// above were not blanket refusals.
	if st, _ := atkMCP(t, s, atkStr(pubTok, "access_token")); st != http.StatusOK {
		t.Errorf("public client's first token at the end: %d", st)
	}
}

// TestProxyAttackRegistrationFlood: registrations are unauthenticated, so
// past --max-registered-clients /register answers 503
// temporarily_unavailable with Retry-After, and the clients already
// registered keep signing in and refreshing.
func TestProxyAttackRegistrationFlood(t *testing.T) {
	t.Parallel()
	s := startDevProxy(t, "--max-registered-clients", "3")
	victim := s.register(t, nil)
	s.register(t, nil)
	s.register(t, nil)
	for i := range 2 {
		st, h, body := atkPost(t, s, "/register", "application/json",
			`{"client_name":"flood","redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}`, nil)
		if st != http.StatusServiceUnavailable || atkStr(body, "error") != "temporarily_unavailable" || h.Get("Retry-After") == "" || body["client_id"] != nil {
			t.Fatalf("registration %d past the bound: %d %v (Retry-After %q), want 503 temporarily_unavailable with Retry-After", i+4, st, body, h.Get("Retry-After"))
		}
	}
	tok := victim.login(t, s.newUser(t), "notes:read")
	if st, body := atkRefresh(t, victim, atkStr(tok, "refresh_token")); st != http.StatusOK {
		t.Errorf("a registered client's refresh past the bound: %d %v", st, body)
	}
}
