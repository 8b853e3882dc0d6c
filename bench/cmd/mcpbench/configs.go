package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/authz/as"
	authzredis "github.com/remotemcp/remotemcp/authz/redisstore"
	"github.com/remotemcp/remotemcp/authz/token"
)

// env is what every configuration is started from.
type env struct {
	work       string // scratch directory: binaries, keys, logs
	remotemcp  string // the real binary (go build ./cmd/remotemcp)
	instrument string // the same run() in a test binary with a debug listener (-tags bench)
	self       string // this program, for the peers
	harness    string // base URL of our JWKS and OIDC discovery server
	jwtRing    *token.KeyRing
	conns      int
	extraEnv   []string // -server-env
}

// A server is one configuration, started.
type server struct {
	key   string
	proc  *proc
	base  string // http://127.0.0.1:port
	debug string // debug listener (peers and the instrumented binary)
	args  []string
	env   []string
	redis string // the Redis address, when the configuration uses Redis
	rproc *proc  // and its process
	// callers returns n ready tools/call steps (tokens obtained, sessions
	// opened).
	callers func(ctx context.Context, hc *http.Client, n int) ([]step, error)
	cleanup []func()
}

func (s *server) stop() {
	s.proc.stop()
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
}

// configDesc describes the configurations of the throughput table.
var configDesc = map[string]string{
	"a":     "net/http JSON-RPC echo handler (the ceiling)",
	"b":     "go-sdk v1.8.0 StreamableHTTPHandler, Stateless + JSONResponse, no auth (the peer)",
	"b-gc":  "as (b), with GOGC=2000 (about the heap goal remotemcp's GC floor gives at this live heap)",
	"c":     "remotemcp 2026-07-28, --auth proxy, our ES256 tokens verified per request, in-process stores",
	"c-log": "as (c), with the default --log-level info (one access-log line per request)",
	// The GC floor (cmd/remotemcp's gcFloor) against what a deployment can
	// set instead: the runtime's default, and a memory limit with GOGC off.
	"c-gogc":     "as (c), with GOGC=100 (the runtime's default; remotemcp's GC floor is off when GOGC is set)",
	"c-memlimit": "as (c), with GOGC=off GOMEMLIMIT=96MiB (a deployment's setting instead of the floor, for about the same RSS)",
	"c-redis":    "as (c), with --redis-url (all stores in Redis)",
	"d":          "remotemcp legacy session (2025-11-25), --redis-url, --auth none",
	"d-mem":      "remotemcp legacy session (2025-11-25), in-process stores, --auth none",
	"e":          "remotemcp 2026-07-28, --auth jwt against an external JWKS (served by the harness)",
}

// startConfig starts configuration key. redisVia, if set, puts a proxy in
// front of Redis: it gets the address Redis listens on and returns the one
// the server should use.
func startConfig(ctx context.Context, e *env, key string, instrumented bool, redisVia func(string) string) (*server, error) {
	s := &server{key: key}
	addr := freeAddr()
	s.base = "http://" + addr
	s.debug = freeAddr()
	bin := e.remotemcp
	if instrumented {
		bin = e.instrument
	}
	withRedis := func() error {
		rp, raddr, err := startRedis(ctx, e.work)
		if err != nil {
			return err
		}
		s.redis, s.rproc = raddr, rp
		s.cleanup = append(s.cleanup, rp.stop)
		url := raddr
		if redisVia != nil {
			url = redisVia(raddr)
		}
		s.args = append(s.args, "--redis-url", "redis://"+url)
		key := make([]byte, 32)
		rand.Read(key)
		s.env = append(s.env, "REMOTEMCP_STATE_KEY="+hex.EncodeToString(key))
		return nil
	}
	common := []string{"--listen", addr, "--fixtures", "conformance", "--log-level", "warn"}
	switch key {
	case "a", "b", "b-gc":
		kind := map[string]string{"a": "echo", "b": "sdk", "b-gc": "sdk"}[key]
		s.env = e.extraEnv
		if key == "b-gc" {
			s.env = append(slices.Clip(s.env), "GOGC=2000")
		}
		p, err := startProc(e.work, "peer-"+key, s.env, e.self, "peer", "--kind", kind, "--listen", addr, "--debug", s.debug)
		if err != nil {
			return nil, err
		}
		s.proc = p
		s.args = []string{"mcpbench", "peer", "--kind", kind}
		s.callers = modernCallers(s, "")
		return s, p.waitHTTP(s.base + "/healthz")
	case "c", "c-log", "c-gogc", "c-memlimit":
		s.args = append(common, "--auth", "proxy", "--rate-limits", "off", "--access-token-lifetime", "1h")
		switch key {
		case "c-log":
			s.args[len(common)-1] = "info"
		case "c-gogc":
			s.env = append(s.env, "GOGC=100")
		case "c-memlimit":
			s.env = append(s.env, "GOGC=off", "GOMEMLIMIT=96MiB")
		}
		s.callers = func(ctx context.Context, hc *http.Client, n int) ([]step, error) {
			steps := make([]step, n)
			for i := range n {
				_, t, err := flow(ctx, s.base, hc, fmt.Sprintf("bench-%d", i))
				if err != nil {
					return nil, fmt.Errorf("OAuth flow: %w", err)
				}
				c := &mcpCaller{hc: hc, url: s.base + "/mcp", token: t.Access}
				steps[i] = c.modern
			}
			return steps, nil
		}
	case "c-redis":
		s.args = append(common, "--auth", "proxy", "--rate-limits", "off", "--access-token-lifetime", "1h",
			"--upstream-issuer", e.harness+"/oidc")
		s.env = append(s.env, "REMOTEMCP_UPSTREAM_CLIENT_ID=mcpbench", "REMOTEMCP_UPSTREAM_CLIENT_SECRET=mcpbench-secret")
		ring, files, err := proxyKeys(e.work)
		if err != nil {
			return nil, err
		}
		s.args = append(s.args, files...)
		if err := withRedis(); err != nil {
			return nil, err
		}
		s.callers = func(ctx context.Context, hc *http.Client, n int) ([]step, error) {
			return redisGrantCallers(ctx, s, hc, ring, n)
		}
	case "d", "d-mem":
		// Every caller is the one anonymous user, and the memory phase
		// opens thousands of sessions: past the per-user session limit.
		s.args = append(common, "--auth", "none", "--max-sessions-per-user", "1000000")
		if key == "d" {
			if err := withRedis(); err != nil {
				return nil, err
			}
		}
		s.callers = func(ctx context.Context, hc *http.Client, n int) ([]step, error) {
			steps := make([]step, n)
			for i := range n {
				c := &mcpCaller{hc: hc, url: s.base + "/mcp"}
				if err := c.initialize(ctx); err != nil {
					return nil, err
				}
				steps[i] = c.legacy
			}
			return steps, nil
		}
	case "e":
		iss := e.harness + "/jwt"
		s.args = append(common, "--auth", "jwt", "--issuer", iss, "--jwks-url", iss+"/jwks")
		s.callers = func(ctx context.Context, hc *http.Client, n int) ([]step, error) {
			issuer, err := token.NewIssuer(e.jwtRing, &token.IssuerOptions{Issuer: iss, Audience: s.base + "/mcp", AccessTokenLifetime: time.Hour})
			if err != nil {
				return nil, err
			}
			steps := make([]step, n)
			for i := range n {
				tok, _, _, err := issuer.MintAccessToken(fmt.Sprintf("bench-%d", i), "mcpbench", []string{"notes:read"}, fmt.Sprintf("g%d", i))
				if err != nil {
					return nil, err
				}
				c := &mcpCaller{hc: hc, url: s.base + "/mcp", token: tok}
				steps[i] = c.modern
			}
			return steps, nil
		}
	default:
		return nil, fmt.Errorf("unknown configuration %q", key)
	}
	s.env = append(s.env, e.extraEnv...)
	var env []string
	if instrumented {
		env = append(env, "REMOTEMCP_BENCH_ARGS="+strings.Join(s.args, "\n"), "REMOTEMCP_BENCH_DEBUG="+s.debug)
		p, err := startProc(e.work, "remotemcp-"+key, append(env, s.env...), bin, "-test.run", "^TestBenchServe$")
		if err != nil {
			s.stop()
			return nil, err
		}
		s.proc = p
	} else {
		p, err := startProc(e.work, "remotemcp-"+key, s.env, bin, s.args...)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.proc = p
	}
	if err := s.proc.waitHTTP(s.base + "/healthz"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// modernCallers are unauthenticated 2026-07-28 callers.
func modernCallers(s *server, token string) func(context.Context, *http.Client, int) ([]step, error) {
	return func(ctx context.Context, hc *http.Client, n int) ([]step, error) {
		steps := make([]step, n)
		for i := range n {
			c := &mcpCaller{hc: hc, url: s.base + "/mcp", token: token}
			steps[i] = c.modern
		}
		return steps, nil
	}
}

// proxyKeys writes the signing key ring, vault keys and cookie key that
// --auth proxy needs with --redis-url, and returns the ring and the flags.
func proxyKeys(dir string) (*token.KeyRing, []string, error) {
	k, err := token.GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	ring, err := token.NewKeyRing(k)
	if err != nil {
		return nil, nil, err
	}
	ringJSON, err := token.MarshalKeyRing(ring)
	if err != nil {
		return nil, nil, err
	}
	vault, cookie := make([]byte, 32), make([]byte, 32)
	rand.Read(vault)
	rand.Read(cookie)
	files := map[string][]byte{
		"signing.json": ringJSON,
		"vault-keys":   []byte("k1:" + hex.EncodeToString(vault)),
		"cookie-key":   []byte(hex.EncodeToString(cookie)),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, nil, err
		}
	}
	return ring, []string{"--signing-key-file", filepath.Join(dir, "signing.json"),
		"--vault-keys-file", filepath.Join(dir, "vault-keys"), "--cookie-key-file", filepath.Join(dir, "cookie-key")}, nil
}

// redisGrantCallers mints our tokens with the server's key ring for grants
// it writes to Redis through authz's own Redis store: what a sign-in
// through an upstream leaves behind, without the upstream.
func redisGrantCallers(ctx context.Context, s *server, hc *http.Client, ring *token.KeyRing, n int) ([]step, error) {
	rdb := redis.NewClient(&redis.Options{Addr: s.redis})
	defer rdb.Close()
	store := authzredis.New(rdb, nil)
	defer store.Close()
	issuer, err := token.NewIssuer(ring, &token.IssuerOptions{Issuer: s.base, Audience: s.base + "/mcp", AccessTokenLifetime: time.Hour})
	if err != nil {
		return nil, err
	}
	steps := make([]step, n)
	for i := range n {
		g := &as.Grant{ID: randomString(16), Subject: fmt.Sprintf("oidc:bench-%d", i), ClientID: "mcpbench",
			Scopes: []string{"notes:read"}, Resource: s.base + "/mcp", CreatedAt: time.Now()}
		if err := store.PutGrant(ctx, g, 24*time.Hour); err != nil {
			return nil, err
		}
		tok, _, _, err := issuer.MintAccessToken(g.Subject, g.ClientID, g.Scopes, g.ID)
		if err != nil {
			return nil, err
		}
		c := &mcpCaller{hc: hc, url: s.base + "/mcp", token: tok}
		steps[i] = c.modern
	}
	return steps, nil
}

// startHarness serves the JWKS of --auth jwt's issuer and the discovery
// document of the upstream OpenID provider that c-redis is configured
// with (remotemcp reads it at start; nobody signs in there).
func startHarness(e *env) (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.harness = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("GET /jwt/jwks", token.JWKSHandler(e.jwtRing, nil))
	mux.HandleFunc("GET /oidc/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := e.harness + "/oidc"
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
			"userinfo_endpoint": iss + "/userinfo", "jwks_uri": iss + "/jwks",
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}
