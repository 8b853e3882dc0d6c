package main

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scrape GETs a Prometheus text exposition.
func scrape(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	return string(body)
}

// metricValue sums the samples of family name whose labels contain every
// one of labels (`key="value"`); -1 if there is none.
func metricValue(text, name string, labels ...string) float64 {
	sum, found := 0.0, false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest, l)
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// TestMetricsProxy drives the --auth proxy flows (registration, consent
// given and denied, code and refresh grants, a refresh token reused after
// its grace window, a revocation, a client metadata document fetch, the
// registration rate limit, tools/call with our token) and scrapes the
// binary's /metrics handler for the families each exercised.
func TestMetricsProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips the end-to-end OAuth flows (make test runs them)")
	}
	var skip atomic.Int64
	ln, base := reserve(t)
	cfg, err := parseConfig([]string{"--listen", ln.Addr().String(), "--public-url", base, "--auth", "proxy",
		"--fixtures", "conformance", "--refresh-grace", "1s", "--metrics-listen", "127.0.0.1:0"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MetricsListen != "127.0.0.1:0" {
		t.Fatalf("MetricsListen = %q", cfg.MetricsListen)
	}
	cfg.now = func() time.Time { return time.Now().Add(time.Duration(skip.Load())) }
	cfg.metrics = newMetricsRegistry()
	a, err := build(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); a.close() })
	ms := httptest.NewServer(metricsHandler(cfg.metrics))
	defer ms.Close()
	s := &proxyServer{base: base, resource: base + "/mcp", upstreamFill: map[string]string{"username": "alice"}, upstreamHost: base}

	// Consent given; the code grant; tools/call twice with the token
	// (a verified-token cache miss, then hits); a refresh; the previous
	// refresh token again past the grace window.
	c := s.register(t, nil)
	u := s.newUser(t)
	tok := c.login(t, u, "notes:read")
	access, _ := tok["access_token"].(string)
	rt0, _ := tok["refresh_token"].(string)
	for range 2 {
		if st := s.mcpStatus(t, access); st != http.StatusOK {
			t.Fatalf("tools/call: %d", st)
		}
	}
	if st, body, _ := c.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt0}}); st != http.StatusOK {
		t.Fatalf("refresh: %d %v", st, body)
	}
	skip.Add(int64(2 * time.Second))
	if st, _, _ := c.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt0}}); st != http.StatusBadRequest {
		t.Fatalf("reuse after grace: %d; want 400", st)
	}
	// Consent denied, by another client's user.
	c2 := s.register(t, nil)
	u2 := s.newUser(t)
	u2.press = "deny"
	_, challenge := pkcePair()
	q, err := u2.authorize(t.Context(), c2.authURL(challenge, "st", "notes:read", nil), c2.redirect)
	if err != nil || q.Get("error") != "access_denied" {
		t.Fatalf("denied authorization: %v %v", q, err)
	}
	// A revocation.
	form := url.Values{"token": {"not-a-token"}, "client_id": {c2.id}}
	resp, err := http.PostForm(base+"/revoke", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	// A client metadata document that cannot be fetched.
	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	resp, err = http.Get(c.authURL(challenge, "st", "notes:read", url.Values{"client_id": {missing.URL + "/client.json"}}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Registrations past the rate limit.
	for n := 0; ; n++ {
		resp, err := http.Post(base+"/register", "application/json", strings.NewReader(`{"redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
		if n == 40 {
			t.Fatal("no registration was rate limited")
		}
	}

	if resp, err := http.Get(base + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("the public listener answers /metrics with %d; want 404 (metrics have their own listener)", resp.StatusCode)
		}
	}
	text := scrape(t, ms.URL+"/metrics")
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64 // at least
	}{
		{"remotemcp_oauth_registrations_total", []string{`outcome="ok"`}, 3},
		{"remotemcp_oauth_authorizations_total", []string{`outcome="consented"`}, 1},
		{"remotemcp_oauth_authorizations_total", []string{`outcome="denied"`}, 1},
		{"remotemcp_oauth_token_requests_total", []string{`grant_type="authorization_code"`, `outcome="ok"`}, 1},
		{"remotemcp_oauth_token_requests_total", []string{`grant_type="refresh_token"`, `outcome="ok"`}, 1},
		{"remotemcp_oauth_token_requests_total", []string{`grant_type="refresh_token"`, `outcome="invalid_grant"`}, 1},
		{"remotemcp_oauth_refresh_reuse_total", nil, 1},
		{"remotemcp_oauth_revocations_total", nil, 1},
		{"remotemcp_oauth_client_metadata_fetches_total", []string{`outcome="failed"`}, 1},
		{"remotemcp_rate_limited_total", []string{`endpoint="register"`}, 1},
		{"remotemcp_token_cache_lookups_total", []string{`result="miss"`}, 1},
		{"remotemcp_token_cache_lookups_total", []string{`result="hit"`}, 1},
		{"remotemcp_mcp_requests_total", []string{`era="2026-07-28"`, `method="tools/call"`, `outcome="ok"`}, 2},
		{"remotemcp_tool_calls_total", []string{`tool="whoami"`, `outcome="ok"`}, 2},
		{"remotemcp_oauth_upstream_refreshes_total", nil, 0},
		{"remotemcp_sse_streams_open", nil, 0},
		{"remotemcp_legacy_sessions_active", nil, 0},
		{"go_goroutines", nil, 1},
	} {
		if got := metricValue(text, tt.name, tt.labels...); got < tt.want {
			t.Errorf("%s%v = %v; want at least %v", tt.name, tt.labels, got, tt.want)
		}
	}
	for _, secret := range []string{access, rt0, c.id, c2.id} {
		if secret != "" && strings.Contains(text, secret) {
			t.Errorf("/metrics holds a token or client id")
		}
	}
}
