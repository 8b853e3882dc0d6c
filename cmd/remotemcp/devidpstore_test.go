package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/cmd/remotemcp/devidp"
	"github.com/remotemcp/remotemcp/internal/redistest"
)

// roundRobin is a load balancer in front of replicas: each request goes
// to the next one, and it remembers which replica served which request.
type roundRobin struct {
	mu       sync.Mutex
	backends []*url.URL
	next     int
	served   []string // "replica method path", in order
}

func (lb *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lb.mu.Lock()
	i := lb.next
	lb.next = (lb.next + 1) % len(lb.backends)
	lb.served = append(lb.served, string(rune('A'+i))+" "+r.Method+" "+r.URL.Path)
	lb.mu.Unlock()
	// The Host header stays the public one, as behind a real balancer.
	(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(lb.backends[i])
		pr.Out.Host = pr.In.Host
	}}).ServeHTTP(w, r)
}

// replicaOf returns which replica served the n-th request for method and
// path (0-based), or "".
func (lb *roundRobin) replicaOf(method, path string, n int) string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for _, s := range lb.served {
		if strings.HasSuffix(s, " "+method+" "+path) {
			if n == 0 {
				return s[:1]
			}
			n--
		}
	}
	return ""
}

// TestDevIdPAcrossReplicas: with --redis-url the development identity
// provider keeps its records in Redis, so that two replicas on one Redis,
// behind a round-robin balancer, serve one provider: the login page shown
// by one replica is submitted to the other, the code and tokens it issues
// are redeemed and used through whichever replica the balancer picks,
// and the user's tool call (whoami, which asks the provider's userinfo
// with the vaulted token) succeeds. Every key it writes has a TTL of at
// most the provider's refresh-token lifetime.
func TestDevIdPAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	var ring bytes.Buffer
	if err := signingKeyCommand(nil, &ring, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"signing.json": ring.String(), "state-key": testKeyHex} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"REMOTEMCP_COOKIE_KEY": testKeyHex, "REMOTEMCP_VAULT_KEYS": "k1:" + testKeyHex}
	args := []string{"--redis-url", "redis://" + srv.Addr, "--signing-key-file", filepath.Join(dir, "signing.json"),
		"--state-key-file", filepath.Join(dir, "state-key")}

	ln, base := reserve(t)
	lb := &roundRobin{}
	var s *proxyServer
	for range 2 {
		rln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s = startProxy(t, rln, base, env, args...)
		lb.backends = append(lb.backends, &url.URL{Scheme: "http", Host: rln.Addr().String()})
	}
	front := &http.Server{Handler: lb, ReadHeaderTimeout: 5 * time.Second}
	go front.Serve(ln)
	t.Cleanup(func() { front.Close() })

	c := s.register(t, nil)
	tok := c.login(t, s.newUser(t), "notes:read")
	if got, shown := lb.replicaOf("POST", "/dev-idp/authorize", 0), lb.replicaOf("GET", "/dev-idp/authorize", 0); got == "" || got == shown {
		t.Errorf("the login page came from replica %q and was submitted to %q: want two replicas (served: %v)", shown, got, lb.served)
	}
	if lb.replicaOf("POST", "/dev-idp/token", 0) == "" {
		t.Errorf("no code redeemed at the provider (served: %v)", lb.served)
	}
	at, _ := tok["access_token"].(string)
	for i := range 2 { // both replicas
		if st := s.mcpStatus(t, at); st != http.StatusOK {
			t.Errorf("whoami #%d: %d, want 200", i, st)
		}
	}

	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "remotemcp:{devidp:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, k := range keys {
		kinds[strings.SplitN(strings.TrimPrefix(k, "remotemcp:{devidp:"), ":", 2)[0]] = true
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > 24*time.Hour {
			t.Errorf("key %s: TTL %v (%v), want at most 24h", k, ttl, err)
		}
		if n, err := rdb.MemoryUsage(ctx, k).Result(); err == nil {
			t.Logf("%s: %d bytes (MEMORY USAGE), TTL %v", k[:min(len(k), 40)], n, ttl.Round(time.Second))
		}
		if v, _ := rdb.Get(ctx, k).Result(); strings.Contains(v, at) {
			t.Errorf("key %s holds an access token in the clear", k)
		}
	}
	for _, want := range []string{"code", "used", "token"} {
		if !kinds[want] {
			t.Errorf("no %q record in Redis: keys %v", want, keys)
		}
	}
	if kinds["login"] {
		t.Errorf("the login request outlived its use: keys %v", keys)
	}
}

// TestDevIdPRedisCodeOnce: on Redis, of concurrent redemptions of one
// code exactly one gets tokens, and the others revoke what it got (the
// access token no longer reads userinfo); the rotated refresh token
// cannot be used twice either.
func TestDevIdPRedisCodeOnce(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ts := httptest.NewUnstartedServer(nil)
	iss := "http://" + ts.Listener.Addr().String() + "/dev-idp"
	const redirect = "http://127.0.0.1:9/cb"
	p, err := devidp.New(devidp.Options{Issuer: iss, ClientID: "c", ClientSecret: "s", RedirectURIs: []string{redirect}, Store: devIdPStore{rdb}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dev-idp/", p.Handler())
	ts.Config.Handler = mux
	ts.Start()
	defer ts.Close()
	hc := ts.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	verifier, challenge := pkcePair()
	q := url.Values{"response_type": {"code"}, "client_id": {"c"}, "redirect_uri": {redirect}, "state": {"st"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "scope": {"openid profile"}}
	resp, err := hc.Get(iss + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="request_id" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no login form: %d %s", resp.StatusCode, page)
	}
	resp, err = hc.PostForm(iss+"/authorize", url.Values{"request_id": {string(m[1])}, "username": {"alice"}, "action": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	token := func(form url.Values) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, iss+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("c", "s")
		resp, err := hc.Do(req)
		if err != nil {
			t.Error(err)
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	const n = 8
	var wg sync.WaitGroup
	results := make(chan map[string]any, n)
	for range n {
		wg.Go(func() {
			if st, out := token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {redirect}}); st == http.StatusOK {
				results <- out
			}
		})
	}
	wg.Wait()
	close(results)
	var won []map[string]any
	for r := range results {
		won = append(won, r)
	}
	if len(won) != 1 {
		t.Fatalf("%d of %d concurrent redemptions got tokens, want 1", len(won), n)
	}
	req, _ := http.NewRequest(http.MethodGet, iss+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+won[0]["access_token"].(string))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo with the winner's token after the replays: %d, want 401 (the grant is revoked)", resp.StatusCode)
	}
	if st, _ := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {won[0]["refresh_token"].(string)}}); st != http.StatusBadRequest {
		t.Errorf("refresh with the revoked grant's token: %d, want 400", st)
	}
}
