package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
