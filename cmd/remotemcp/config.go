package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
)

// config is everything the flags and environment decide.
type config struct {
	Listen          string
	PublicURL       *url.URL // the canonical base URL; the endpoint is PublicURL + "/mcp"
	Auth            string
	Fixtures        string
	AllowedOrigins  []string
	SessionTTL      time.Duration
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	LogFormat       string
	StateKey        []byte
	StateKeyRandom  bool // StateKey was made up for this process

	// RedisURL, if set, puts every store in Redis (--redis-url), so that
	// replicas share all state; RedisMode is single, sentinel or cluster.
	RedisURL  string
	RedisMode string

	// Proxy is the --auth proxy configuration, nil in other modes.
	Proxy *proxyConfig

	// OAuth resource server (--auth jwt | introspect).
	Issuer              string
	JWKSURL             string
	Audience            string
	AuthorizationServer string
	IntrospectionURL    string
	IntrospectClientID  string
	IntrospectSecret    string
	ClockSkew           time.Duration
	ScopeRead           string
	ScopeWrite          string
	// publicURLDerived is set when PublicURL comes from --listen, so that a
	// listener on port 0 can fill in the port it got.
	publicURLDerived bool
	// now is the --auth proxy authorization server's clock (nil: time.Now);
	// no flag sets it: tests do, to be past a time window (the refresh
	// grace) without waiting for it.
	now func() time.Time
}

// envName is the environment twin of a flag: --public-url ⇒ REMOTEMCP_PUBLIC_URL.
func envName(flagName string) string {
	return "REMOTEMCP_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("remotemcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen          = fs.String("listen", "127.0.0.1:8080", "address to listen on (host:port)")
		publicURL       = fs.String("public-url", "", "canonical base URL clients use, e.g. https://mcp.example.com; the MCP endpoint is <public-url>/mcp (default: http://<listen>)")
		authMode        = fs.String("auth", "none", "how requests are authenticated: none (one anonymous user, loopback only), jwt (JWT access tokens from --issuer), introspect (opaque tokens, RFC 7662), proxy (we are the authorization server, users sign in with --upstream)")
		issuer          = fs.String("issuer", "", "the authorization server's issuer identifier (exact match with the token's iss)")
		jwksURL         = fs.String("jwks-url", "", "the issuer's JWK Set URL (default: jwks_uri from the issuer's metadata)")
		audience        = fs.String("audience", "", "the audience tokens must carry (default: the canonical MCP URL <public-url>/mcp)")
		authServer      = fs.String("authorization-server", "", "issuer advertised to clients in the protected-resource metadata (default: --issuer)")
		introspectURL   = fs.String("introspection-url", "", "RFC 7662 introspection endpoint (--auth introspect); credentials come from REMOTEMCP_INTROSPECTION_CLIENT_ID/_SECRET or --introspection-credentials-file")
		introspectFile  = fs.String("introspection-credentials-file", "", "file with the introspection client id on the first line and its secret on the second")
		clockSkew       = fs.Duration("clock-skew", 30*time.Second, "clock skew tolerated on token exp, nbf and iat")
		scopeRead       = fs.String("scope-read", "notes:read", "scope name that allows reading notes")
		scopeWrite      = fs.String("scope-write", "notes:write", "scope name that allows changing notes (implies --scope-read)")
		fixtures        = fs.String("fixtures", "", "extra fixtures to serve: conformance (loopback only)")
		origins         = fs.String("allowed-origins", "", "comma-separated browser origins allowed to call /mcp (loopback origins are allowed on a loopback listener)")
		sessionTTL      = fs.Duration("session-ttl", 30*time.Minute, "idle lifetime of a legacy MCP session")
		maxBody         = fs.Int64("max-body-bytes", mcpserver.DefaultMaxBodyBytes, "largest accepted request body")
		shutdownTimeout = fs.Duration("shutdown-timeout", 15*time.Second, "how long a graceful shutdown waits for in-flight requests")
		logLevel        = fs.String("log-level", "info", "debug, info, warn or error")
		logFormat       = fs.String("log-format", "text", "text or json")
		stateKeyFile    = fs.String("state-key-file", "", "file holding the hex key (≥32 bytes) that protects MRTR requestState; env REMOTEMCP_STATE_KEY may hold the key itself (default: random per process)")
	)
	redisURL := fs.String("redis-url", "", "keep all state in Redis so that replicas share it: redis://[user:password@]host:port[/db] or rediss://…; several hosts with ?addr=host:port (default: in-process stores, one replica); prefer the environment twin when it holds a password")
	redisMode := fs.String("redis-mode", "single", "how --redis-url is read: single, sentinel (master_name=<name> in the URL; its hosts are the sentinels) or cluster")
	pf := addProxyFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: remotemcp [flags]\n\nServes a remote MCP server on <public-url>/mcp. Every flag can also be set\nthrough its environment twin, e.g. --listen as REMOTEMCP_LISTEN; a flag wins\nover the environment.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	// Environment first, so that explicit flags override it.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}

	cfg := &config{
		Listen:          *listen,
		Auth:            *authMode,
		Fixtures:        *fixtures,
		SessionTTL:      *sessionTTL,
		MaxBodyBytes:    *maxBody,
		ShutdownTimeout: *shutdownTimeout,
		LogFormat:       *logFormat,
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: want host:port, e.g. 127.0.0.1:8080", cfg.Listen)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return nil, fmt.Errorf("--listen %q: bad port", cfg.Listen)
	}
	loopback := mcpserver.IsLoopbackHost(host)

	if cfg.Auth == "none" && !loopback {
		return nil, fmt.Errorf("--auth none serves everyone as one anonymous user, so it is refused on the non-loopback listener %q", cfg.Listen)
	}
	if *publicURL == "" && !loopback {
		return nil, fmt.Errorf("--public-url is required with the non-loopback listener %q: it is the URL clients connect to (e.g. https://mcp.example.com) and the audience of their tokens", cfg.Listen)
	}
	if *publicURL == "" {
		cfg.publicURLDerived = true
		h := host
		if h == "" || h == "0.0.0.0" || h == "::" {
			h = "127.0.0.1"
		}
		*publicURL = "http://" + net.JoinHostPort(h, port)
	}
	u, err := url.Parse(*publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--public-url %q: want an absolute http(s) URL without query or fragment, e.g. https://mcp.example.com", *publicURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if u.Scheme == "http" && !mcpserver.IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("--public-url %q: plain http is only allowed on loopback; use https", *publicURL)
	}
	cfg.PublicURL = u

	cfg.Issuer, cfg.JWKSURL, cfg.Audience, cfg.AuthorizationServer = *issuer, *jwksURL, *audience, *authServer
	cfg.IntrospectionURL, cfg.ClockSkew = *introspectURL, *clockSkew
	cfg.ScopeRead, cfg.ScopeWrite = strings.TrimSpace(*scopeRead), strings.TrimSpace(*scopeWrite)
	if cfg.AuthorizationServer == "" {
		cfg.AuthorizationServer = cfg.Issuer
	}
	switch cfg.Auth {
	case "none": // loopback checked above
	case "jwt", "introspect":
		if err := checkURL("--issuer", cfg.Issuer, true); err != nil {
			return nil, err
		}
		if err := checkURL("--jwks-url", cfg.JWKSURL, false); err != nil {
			return nil, err
		}
		if err := checkURL("--authorization-server", cfg.AuthorizationServer, true); err != nil {
			return nil, err
		}
		if cfg.Auth == "introspect" {
			if err := checkURL("--introspection-url", cfg.IntrospectionURL, true); err != nil {
				return nil, err
			}
			cfg.IntrospectClientID = getenv("REMOTEMCP_INTROSPECTION_CLIENT_ID")
			cfg.IntrospectSecret = getenv("REMOTEMCP_INTROSPECTION_CLIENT_SECRET")
			if *introspectFile != "" {
				b, err := os.ReadFile(*introspectFile)
				if err != nil {
					return nil, fmt.Errorf("--introspection-credentials-file: %v", err)
				}
				id, secret, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
				cfg.IntrospectClientID, cfg.IntrospectSecret = strings.TrimSpace(id), strings.TrimSpace(secret)
			}
			if cfg.IntrospectClientID == "" || cfg.IntrospectSecret == "" {
				return nil, errors.New("--auth introspect needs client credentials: set REMOTEMCP_INTROSPECTION_CLIENT_ID and REMOTEMCP_INTROSPECTION_CLIENT_SECRET, or --introspection-credentials-file")
			}
		}
		if cfg.ScopeRead == "" || cfg.ScopeWrite == "" || strings.ContainsAny(cfg.ScopeRead+cfg.ScopeWrite, " \"") {
			return nil, errors.New("--scope-read and --scope-write must be single scope names")
		}
		if cfg.ClockSkew < 0 || cfg.ClockSkew > 5*time.Minute {
			return nil, fmt.Errorf("--clock-skew %v: must be between 0 and 5m", cfg.ClockSkew)
		}
	case "proxy":
		if cfg.Issuer != "" || cfg.JWKSURL != "" || cfg.IntrospectionURL != "" || *authServer != "" {
			return nil, errors.New("--auth proxy is its own authorization server: drop --issuer, --jwks-url, --authorization-server and --introspection-url")
		}
		if cfg.ScopeRead == "" || cfg.ScopeWrite == "" || strings.ContainsAny(cfg.ScopeRead+cfg.ScopeWrite, " \"") {
			return nil, errors.New("--scope-read and --scope-write must be single scope names")
		}
		pc, err := parseProxy(pf, getenv, loopback)
		if err != nil {
			return nil, err
		}
		cfg.Proxy = pc
	default:
		return nil, fmt.Errorf("--auth %q: unknown mode (supported: none, jwt, introspect, proxy)", cfg.Auth)
	}
	switch cfg.Fixtures {
	case "":
	case "conformance":
		if !loopback {
			return nil, fmt.Errorf("--fixtures conformance is loopback only (listener %q)", cfg.Listen)
		}
	default:
		return nil, fmt.Errorf("--fixtures %q: unknown (supported: conformance)", cfg.Fixtures)
	}
	for _, o := range strings.Split(*origins, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		ou, err := url.Parse(o)
		if err != nil || (ou.Scheme != "http" && ou.Scheme != "https") || ou.Host == "" || (ou.Path != "" && ou.Path != "/") || ou.RawQuery != "" {
			return nil, fmt.Errorf("--allowed-origins: %q is not an origin like https://app.example.com", o)
		}
		cfg.AllowedOrigins = append(cfg.AllowedOrigins, ou.Scheme+"://"+ou.Host)
	}
	if cfg.SessionTTL < time.Minute {
		return nil, fmt.Errorf("--session-ttl %v: must be at least 1m", cfg.SessionTTL)
	}
	if cfg.MaxBodyBytes < 1024 {
		return nil, fmt.Errorf("--max-body-bytes %d: must be at least 1024", cfg.MaxBodyBytes)
	}
	if cfg.ShutdownTimeout <= 0 {
		return nil, fmt.Errorf("--shutdown-timeout %v: must be positive", cfg.ShutdownTimeout)
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return nil, fmt.Errorf("--log-format %q: want text or json", cfg.LogFormat)
	}
	keyHex := getenv("REMOTEMCP_STATE_KEY")
	if *stateKeyFile != "" {
		b, err := os.ReadFile(*stateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--state-key-file: %v", err)
		}
		keyHex = strings.TrimSpace(string(b))
	}
	if keyHex != "" {
		k, err := hex.DecodeString(keyHex)
		if err != nil || len(k) < 32 {
			return nil, errors.New("requestState key: want at least 32 bytes, hex-encoded (e.g. `openssl rand -hex 32`)")
		}
		cfg.StateKey = k
	} else {
		cfg.StateKey = make([]byte, 32)
		rand.Read(cfg.StateKey)
		cfg.StateKeyRandom = true
	}
	cfg.RedisURL, cfg.RedisMode = *redisURL, *redisMode
	if cfg.RedisURL != "" {
		rdb, err := newRedis(cfg.RedisURL, cfg.RedisMode)
		if err != nil {
			return nil, err
		}
		rdb.Close() // only checking; build makes the real one
		if cfg.Proxy != nil && len(cfg.Proxy.Ephemeral) > 0 {
			return nil, fmt.Errorf("--redis-url shares state between replicas, so they must share keys too: configure the %s (see README: Keys for production)", strings.Join(cfg.Proxy.Ephemeral, ", "))
		}
		if cfg.Proxy != nil && cfg.Proxy.Upstream == "dev" {
			return nil, errors.New("--upstream dev keeps its sign-ins in process memory, so it cannot serve several replicas: use a real --upstream with --redis-url")
		}
		if cfg.StateKeyRandom {
			return nil, errors.New("--redis-url shares legacy sessions between replicas, so they must share the requestState key: set --state-key-file or REMOTEMCP_STATE_KEY")
		}
	}
	return cfg, nil
}

// checkURL validates a URL setting: https, or http on loopback only.
func checkURL(name, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("%s is required with this --auth mode", name)
		}
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%s %q: want an absolute https URL", name, v)
	}
	if u.Scheme == "http" && !mcpserver.IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%s %q: plain http is only allowed on loopback; use https", name, v)
	}
	return nil
}

// clockSkew is --clock-skew for authz, where zero means "the default":
// --clock-skew 0s means no skew at all.
func (c *config) clockSkew() time.Duration {
	if c.ClockSkew == 0 {
		return -1
	}
	return c.ClockSkew
}

// audience is what tokens must be issued for: --audience, or the endpoint.
func (c *config) audience() string {
	if c.Audience != "" {
		return c.Audience
	}
	return c.endpoint()
}

// endpoint is the canonical MCP URL.
func (c *config) endpoint() string { return c.PublicURL.String() + "/mcp" }

// loopback reports whether the listener is on a loopback address.
func (c *config) loopback() bool {
	host, _, _ := net.SplitHostPort(c.Listen)
	return mcpserver.IsLoopbackHost(host)
}
