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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/remotemcp/remotemcp"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/tools/notes"
	notesmem "github.com/remotemcp/remotemcp/tools/notes/memstore"
)

// config is everything the flags and environment decide.
type config struct {
	Listen         string
	PublicURL      *url.URL // the canonical base URL; the endpoint is PublicURL + "/mcp"
	Auth           string
	Fixtures       string
	AllowedOrigins []string
	SessionTTL     time.Duration
	MaxBodyBytes   int64
	// ResumeWindow and LogMaxBytes bound what a legacy session keeps of
	// its completed request streams (mcpserver.EventLog).
	ResumeWindow time.Duration
	LogMaxBytes  int64
	// MaxBatchMessages and MaxResponseBytes bound what one legacy POST
	// makes the server do and answer (mcpserver.Options).
	MaxBatchMessages int
	MaxResponseBytes int
	// Per-user bounds: legacy sessions, and notes (count, bytes, exports)
	// in either store; MaxMemoryStoreBytes bounds the in-process notes
	// store of all users together.
	MaxSessionsPerUser  int
	NoteLimits          notes.Limits
	MaxMemoryStoreBytes int
	ShutdownTimeout     time.Duration
	LogLevel            slog.Level
	LogFormat           string
	StateKey            []byte
	StateKeyRandom      bool // StateKey was made up for this process

	// RedisURL, if set, puts every store in Redis (--redis-url), so that
	// replicas share all state; RedisMode is single, sentinel or cluster.
	RedisURL  string
	RedisMode string

	// Proxy is the --auth proxy configuration, nil in other modes.
	Proxy *proxyConfig
	// SignIn is who may sign in and the per-tool rules: the
	// configuration file (--config) under the sign-in flags.
	SignIn signIn

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
	// ListStepUp lists to each caller, besides what their token allows,
	// the items that more scope would open (policy.Options.ListStepUp).
	ListStepUp bool
	// dev is set when both the listener and PublicURL are on loopback:
	// only then is development behaviour on (--auth none, --fixtures, the
	// development identity provider, loopback http client metadata
	// documents, loopback browser origins). A loopback listener alone may
	// be a reverse proxy's backend, reachable by anyone.
	dev bool
	// publicURLDerived is set when PublicURL comes from --listen, so that a
	// listener on port 0 can fill in the port it got.
	publicURLDerived bool
	// now is the --auth proxy authorization server's clock (nil: time.Now);
	// no flag sets it: tests do, to be past a time window (the refresh
	// grace) without waiting for it.
	now func() time.Time
	// MetricsListen is the address of the /metrics listener (empty: no
	// metrics); metrics is the registry it serves, set by serve.
	MetricsListen string
	metrics       *prometheus.Registry
}

// envName is the environment twin of a flag: --public-url ⇒ REMOTEMCP_PUBLIC_URL.
func envName(flagName string) string {
	return "REMOTEMCP_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// configFlags are the flags of the server, before validation.
type configFlags struct {
	listen, publicURL, authMode           *string
	issuer, jwksURL, audience, authServer *string
	introspectURL, introspectFile         *string
	clockSkew                             *time.Duration
	scopeRead, scopeWrite                 *string
	fixtures, origins                     *string
	listStepUp                            *bool
	sessionTTL, shutdownTimeout           *time.Duration
	maxBody                               *int64
	maxBatch, maxResponse                 *int
	maxSessions, maxNotes, maxNoteBytes   *int
	maxExports, maxMemoryStore            *int
	resumeWindow                          *time.Duration
	logMaxBytes                           *int64
	logLevel, logFormat, stateKeyFile     *string
	redisURL, redisMode                   *string
	metricsListen                         *string
	proxy                                 *proxyFlags
	signin                                *signInFlags
}

// addFlags defines the server's flags on fs.
func addFlags(fs *flag.FlagSet) *configFlags {
	return &configFlags{
		listen:          fs.String("listen", "127.0.0.1:8080", "address to listen on (host:port)"),
		publicURL:       fs.String("public-url", "", "canonical base URL clients use, e.g. https://mcp.example.com; the MCP endpoint is <public-url>/mcp (default: http://<listen>)"),
		authMode:        fs.String("auth", "none", "how requests are authenticated: none (one anonymous user, loopback listener and public URL only), jwt (JWT access tokens from --issuer), introspect (opaque tokens, RFC 7662), proxy (we are the authorization server, users sign in with --upstream)"),
		issuer:          fs.String("issuer", "", "the authorization server's issuer identifier (exact match with the token's iss)"),
		jwksURL:         fs.String("jwks-url", "", "the issuer's JWK Set URL (default: jwks_uri from the issuer's metadata)"),
		audience:        fs.String("audience", "", "the audience tokens must carry (default: the canonical MCP URL <public-url>/mcp)"),
		authServer:      fs.String("authorization-server", "", "issuer advertised to clients in the protected-resource metadata (default: --issuer)"),
		introspectURL:   fs.String("introspection-url", "", "RFC 7662 introspection endpoint (--auth introspect); credentials come from REMOTEMCP_INTROSPECTION_CLIENT_ID/_SECRET or --introspection-credentials-file"),
		introspectFile:  fs.String("introspection-credentials-file", "", "file with the introspection client id on the first line and its secret on the second"),
		clockSkew:       fs.Duration("clock-skew", 30*time.Second, "clock skew tolerated on token exp, nbf and iat"),
		scopeRead:       fs.String("scope-read", "notes:read", "scope name that allows reading notes"),
		scopeWrite:      fs.String("scope-write", "notes:write", "scope name that allows changing notes (implies --scope-read)"),
		listStepUp:      fs.Bool("list-step-up", true, "also list to each caller the tools, prompts and resources that more scope would open (calling one starts a step-up); false lists only what the caller's token allows now"),
		fixtures:        fs.String("fixtures", "", "extra fixtures to serve: conformance (loopback listener and public URL only)"),
		origins:         fs.String("allowed-origins", "", "comma-separated browser origins allowed to call /mcp (loopback origins are allowed when the listener and public URL are both loopback)"),
		sessionTTL:      fs.Duration("session-ttl", 30*time.Minute, "idle lifetime of a legacy MCP session"),
		maxBody:         fs.Int64("max-body-bytes", mcpserver.DefaultMaxBodyBytes, "largest accepted request body"),
		maxBatch:        fs.Int("max-batch-messages", mcpserver.DefaultMaxBatchMessages, "most messages accepted in one 2025-03-26 JSON-RPC batch (400 beyond)"),
		maxResponse:     fs.Int("max-response-bytes", mcpserver.DefaultMaxResponseBytes, "most bytes the responses to one legacy request may produce; past it a response is a JSON-RPC error"),
		maxSessions:     fs.Int("max-sessions-per-user", mcpserver.DefaultMaxSessionsPerSubject, "most live legacy sessions one user (token subject) may hold; initialize gets 429 beyond"),
		maxNotes:        fs.Int("max-notes-per-user", notes.DefaultMaxNotes, "most notes one user may have"),
		maxNoteBytes:    fs.Int("max-note-bytes-per-user", notes.DefaultMaxBytes, "most bytes (titles, bodies, tags) one user's notes may take"),
		maxExports:      fs.Int("max-exports-per-user", notes.DefaultMaxExports, "most exports one user holds at once; a new one drops the oldest"),
		maxMemoryStore:  fs.Int("max-memory-store-bytes", notesmem.DefaultMaxBytes, "in-process stores only: most bytes of notes and exports held for all users together"),
		resumeWindow:    fs.Duration("stream-resume-window", mcpserver.DefaultResumeWindow, "how long a legacy session's completed request stream is kept after its last event for a client to resume it (Last-Event-ID); a resume after it opens a fresh GET stream"),
		logMaxBytes:     fs.Int64("session-log-max-bytes", mcpserver.DefaultMaxLoggedBytes, "cap on the bytes of completed request streams one legacy session keeps within the resume window; past it the oldest are forgotten early"),
		shutdownTimeout: fs.Duration("shutdown-timeout", 15*time.Second, "how long a graceful shutdown waits for in-flight requests"),
		logLevel:        fs.String("log-level", "info", "debug, info, warn or error"),
		logFormat:       fs.String("log-format", "text", "text or json"),
		stateKeyFile:    fs.String("state-key-file", "", "file holding the hex key (≥32 bytes) that protects MRTR requestState; env REMOTEMCP_STATE_KEY may hold the key itself (default: random per process)"),
		redisURL:        fs.String("redis-url", "", "keep all state in Redis so that replicas share it: redis://[user:password@]host:port[/db] or rediss://…; several hosts with ?addr=host:port (default: in-process stores, one replica); prefer the environment twin when it holds a password"),
		redisMode:       fs.String("redis-mode", "single", "how --redis-url is read: single, sentinel (master_name=<name> in the URL; its hosts are the sentinels) or cluster"),
		metricsListen:   fs.String("metrics-listen", "", "address of a separate listener serving Prometheus metrics on /metrics, e.g. 127.0.0.1:9090 (default: no metrics)"),
		proxy:           addProxyFlags(fs),
		signin:          addSignInFlags(fs),
	}
}

// parseFlags reads the flags from args over their environment twins: a
// flag wins over the environment.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*configFlags, error) {
	fs := flag.NewFlagSet("remotemcp", flag.ContinueOnError)
	f := addFlags(fs)
	// The flag package would print a parse error and then the whole usage;
	// the error alone comes back instead, for main to print on one line
	// with a pointer to --help. Only --help prints the usage.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	// Environment first, so that explicit flags override it.
	if err := setFromEnv(fs, getenv); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, stderr)
			return nil, errHelp
		}
		return nil, &usageError{command: "remotemcp", err: err}
	}
	if fs.NArg() > 0 {
		return nil, &usageError{command: "remotemcp", err: fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))}
	}
	return f, nil
}

// printUsage writes remotemcp's usage to w: the commands, then every flag
// of fs with its default.
func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `Usage: remotemcp [flags]
       remotemcp signing-key [--rotate FILE] > signing.json
       remotemcp version

Serves a remote MCP server on <public-url>/mcp; with a command instead:
  signing-key  prints a new access-token signing key ring for
               --signing-key-file, or FILE's ring rotated to a new key
               ('remotemcp signing-key --help' lists its flags)
  version      prints the version, commit and Go version (also --version)

Every flag can also be set through its environment twin, e.g. --listen as
REMOTEMCP_LISTEN; a flag wins over the environment.

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// setFromEnv sets each flag of fs whose environment twin is set.
func setFromEnv(fs *flag.FlagSet, getenv func(string) string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	return envErr
}

// parseConfig reads and checks the flags and environment, in this order:
// the listener and public URL, the --auth mode, the fixtures, the HTTP
// settings, the requestState key, then Redis.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	f, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return nil, err
	}
	cfg := &config{
		Listen:              *f.listen,
		MetricsListen:       *f.metricsListen,
		Auth:                *f.authMode,
		Fixtures:            *f.fixtures,
		ListStepUp:          *f.listStepUp,
		SessionTTL:          *f.sessionTTL,
		MaxBodyBytes:        *f.maxBody,
		ResumeWindow:        *f.resumeWindow,
		LogMaxBytes:         *f.logMaxBytes,
		MaxBatchMessages:    *f.maxBatch,
		MaxResponseBytes:    *f.maxResponse,
		MaxSessionsPerUser:  *f.maxSessions,
		NoteLimits:          notes.Limits{Notes: *f.maxNotes, Bytes: *f.maxNoteBytes, Exports: *f.maxExports},
		MaxMemoryStoreBytes: *f.maxMemoryStore,
		ShutdownTimeout:     *f.shutdownTimeout,
		LogFormat:           *f.logFormat,
		RedisURL:            *f.redisURL,
		RedisMode:           *f.redisMode,
	}
	dev, err := cfg.setListener(*f.publicURL)
	if err != nil {
		return nil, err
	}
	if err := cfg.setAuth(f, getenv, dev); err != nil {
		return nil, err
	}
	if err := cfg.setSignIn(f.signin); err != nil {
		return nil, err
	}
	if err := cfg.checkFixtures(dev); err != nil {
		return nil, err
	}
	if err := cfg.setServing(f); err != nil {
		return nil, err
	}
	if err := cfg.setStateKey(*f.stateKeyFile, getenv); err != nil {
		return nil, err
	}
	if err := cfg.checkRedis(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// setListener checks --listen, sets PublicURL from publicURL
// (--public-url) or, on loopback only, from the listener, and sets dev.
// It refuses --auth none unless dev is on, and reports dev.
func (c *config) setListener(publicURL string) (dev bool, err error) {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false, fmt.Errorf("--listen %q: want host:port, e.g. 127.0.0.1:8080", c.Listen)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return false, fmt.Errorf("--listen %q: bad port", c.Listen)
	}
	loopback := mcpserver.IsLoopbackHost(host)
	if c.Auth == "none" && !loopback {
		return false, fmt.Errorf("--auth none serves everyone as one anonymous user, so it is refused on the non-loopback listener %q", c.Listen)
	}
	if publicURL == "" && !loopback {
		return false, fmt.Errorf("--public-url is required with the non-loopback listener %q: it is the URL clients connect to (e.g. https://mcp.example.com) and the audience of their tokens", c.Listen)
	}
	if publicURL == "" {
		c.publicURLDerived = true
		h := host
		if h == "" || h == "0.0.0.0" || h == "::" {
			h = "127.0.0.1"
		}
		publicURL = "http://" + net.JoinHostPort(h, port)
	}
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return false, fmt.Errorf("--public-url %q: want an absolute http(s) URL without query or fragment, e.g. https://mcp.example.com", publicURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if u.Scheme == "http" && !mcpserver.IsLoopbackHost(u.Hostname()) {
		return false, fmt.Errorf("--public-url %q: plain http is only allowed on loopback; use https", publicURL)
	}
	c.PublicURL = u
	// A loopback listener behind a reverse proxy serves whoever reaches
	// the public URL: development behaviour needs both on loopback.
	c.dev = loopback && mcpserver.IsLoopbackHost(u.Hostname())
	if c.Auth == "none" && !c.dev {
		return false, fmt.Errorf("--auth none serves everyone as one anonymous user, so it is refused unless both the listener and --public-url are on loopback (listener %q, public URL %q: behind a reverse proxy, use --auth proxy, jwt or introspect)", c.Listen, publicURL)
	}
	return c.dev, nil
}

// setAuth reads and checks the settings of the --auth mode.
func (c *config) setAuth(f *configFlags, getenv func(string) string, dev bool) error {
	c.Issuer, c.JWKSURL, c.Audience, c.AuthorizationServer = *f.issuer, *f.jwksURL, *f.audience, *f.authServer
	c.IntrospectionURL, c.ClockSkew = *f.introspectURL, *f.clockSkew
	c.ScopeRead, c.ScopeWrite = strings.TrimSpace(*f.scopeRead), strings.TrimSpace(*f.scopeWrite)
	if c.AuthorizationServer == "" {
		c.AuthorizationServer = c.Issuer
	}
	switch c.Auth {
	case "none": // refused off loopback with the listener
		return nil
	case "jwt", "introspect":
		return c.checkResourceServer(*f.introspectFile, getenv)
	case "proxy":
		if c.Issuer != "" || c.JWKSURL != "" || c.IntrospectionURL != "" || *f.authServer != "" {
			return errors.New("--auth proxy is its own authorization server: drop --issuer, --jwks-url, --authorization-server and --introspection-url")
		}
		if err := c.checkScopes(); err != nil {
			return err
		}
		pc, err := parseProxy(f.proxy, getenv, dev)
		if err != nil {
			return err
		}
		c.Proxy = pc
		return nil
	}
	return fmt.Errorf("--auth %q: unknown mode (supported: none, jwt, introspect, proxy)", c.Auth)
}

// checkResourceServer checks the settings of --auth jwt and introspect,
// where another server issues the tokens, and reads the introspection
// credentials.
func (c *config) checkResourceServer(introspectFile string, getenv func(string) string) error {
	if err := checkURL("--issuer", c.Issuer, true); err != nil {
		return err
	}
	if err := checkURL("--jwks-url", c.JWKSURL, false); err != nil {
		return err
	}
	if err := checkURL("--authorization-server", c.AuthorizationServer, true); err != nil {
		return err
	}
	if c.Auth == "introspect" {
		if err := c.setIntrospection(introspectFile, getenv); err != nil {
			return err
		}
	}
	if err := c.checkScopes(); err != nil {
		return err
	}
	if c.ClockSkew < 0 || c.ClockSkew > 5*time.Minute {
		return fmt.Errorf("--clock-skew %v: must be between 0 and 5m", c.ClockSkew)
	}
	return nil
}

// setIntrospection checks --introspection-url and reads the introspection
// client's credentials: from the environment, or from
// --introspection-credentials-file when it is set.
func (c *config) setIntrospection(file string, getenv func(string) string) error {
	if err := checkURL("--introspection-url", c.IntrospectionURL, true); err != nil {
		return err
	}
	c.IntrospectClientID = getenv("REMOTEMCP_INTROSPECTION_CLIENT_ID")
	c.IntrospectSecret = getenv("REMOTEMCP_INTROSPECTION_CLIENT_SECRET")
	if file != "" {
		var err error
		if c.IntrospectClientID, c.IntrospectSecret, err = readCredentials("--introspection-credentials-file", file); err != nil {
			return err
		}
	}
	if c.IntrospectClientID == "" || c.IntrospectSecret == "" {
		return errors.New("--auth introspect needs client credentials: set REMOTEMCP_INTROSPECTION_CLIENT_ID and REMOTEMCP_INTROSPECTION_CLIENT_SECRET, or --introspection-credentials-file")
	}
	return nil
}

// checkScopes checks that --scope-read and --scope-write are scope names.
func (c *config) checkScopes() error {
	if c.ScopeRead == "" || c.ScopeWrite == "" || strings.ContainsAny(c.ScopeRead+c.ScopeWrite, " \"") {
		return errors.New("--scope-read and --scope-write must be single scope names")
	}
	return nil
}

// checkFixtures checks --fixtures, which are for development (dev) only.
func (c *config) checkFixtures(dev bool) error {
	switch c.Fixtures {
	case "":
	case "conformance":
		if !dev {
			return fmt.Errorf("--fixtures conformance is loopback only: both the listener and --public-url must be on loopback (listener %q, public URL %q)", c.Listen, c.PublicURL)
		}
	default:
		return fmt.Errorf("--fixtures %q: unknown (supported: conformance)", c.Fixtures)
	}
	return nil
}

// setServing reads and checks the HTTP and logging settings.
func (c *config) setServing(f *configFlags) error {
	origins, err := parseOrigins(*f.origins)
	if err != nil {
		return err
	}
	c.AllowedOrigins = origins
	if c.SessionTTL < time.Minute {
		return fmt.Errorf("--session-ttl %v: must be at least 1m", c.SessionTTL)
	}
	if c.ResumeWindow < time.Second || c.ResumeWindow > c.SessionTTL {
		return fmt.Errorf("--stream-resume-window %v: must be at least 1s and at most --session-ttl (%v)", c.ResumeWindow, c.SessionTTL)
	}
	if c.LogMaxBytes < 64<<10 {
		return fmt.Errorf("--session-log-max-bytes %d: must be at least 65536", c.LogMaxBytes)
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("--max-body-bytes %d: must be at least 1024", c.MaxBodyBytes)
	}
	if c.MaxBatchMessages < 1 {
		return fmt.Errorf("--max-batch-messages %d: must be at least 1", c.MaxBatchMessages)
	}
	if c.MaxResponseBytes < 64<<10 {
		return fmt.Errorf("--max-response-bytes %d: must be at least 65536", c.MaxResponseBytes)
	}
	for _, l := range []struct {
		flag     string
		val, min int
	}{
		{"--max-sessions-per-user", c.MaxSessionsPerUser, 1},
		{"--max-notes-per-user", c.NoteLimits.Notes, 1},
		{"--max-note-bytes-per-user", c.NoteLimits.Bytes, notes.MaxBody},
		{"--max-exports-per-user", c.NoteLimits.Exports, 1},
		{"--max-memory-store-bytes", c.MaxMemoryStoreBytes, 1 << 20},
	} {
		if l.val < l.min {
			return fmt.Errorf("%s %d: must be at least %d", l.flag, l.val, l.min)
		}
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout %v: must be positive", c.ShutdownTimeout)
	}
	if err := c.LogLevel.UnmarshalText([]byte(*f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", *f.logLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	return nil
}

// parseOrigins reads --allowed-origins: comma-separated origins, each
// normalized to scheme://host.
func parseOrigins(s string) ([]string, error) {
	var origins []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		ou, err := url.Parse(o)
		if err != nil || (ou.Scheme != "http" && ou.Scheme != "https") || ou.Host == "" || (ou.Path != "" && ou.Path != "/") || ou.RawQuery != "" {
			return nil, fmt.Errorf("--allowed-origins: %q is not an origin like https://app.example.com", o)
		}
		origins = append(origins, ou.Scheme+"://"+ou.Host)
	}
	return origins, nil
}

// setStateKey reads the requestState key from --state-key-file or
// REMOTEMCP_STATE_KEY, or makes one up for this process.
func (c *config) setStateKey(file string, getenv func(string) string) error {
	keyHex, err := secretSetting(getenv, "REMOTEMCP_STATE_KEY", "--state-key-file", file)
	if err != nil {
		return err
	}
	c.StateKey, c.StateKeyRandom, err = hexKey("requestState key", keyHex)
	return err
}

// checkRedis checks --redis-url and --redis-mode, and that replicas
// sharing state through Redis would share their keys and sign-ins too.
func (c *config) checkRedis() error {
	if c.RedisURL == "" {
		return nil
	}
	if err := remotemcp.CheckRedisURL(c.RedisURL, c.RedisMode); err != nil {
		return fmt.Errorf("--redis-url, --redis-mode: %w", err)
	}
	if c.Proxy != nil && len(c.Proxy.Ephemeral) > 0 {
		return fmt.Errorf("--redis-url shares state between replicas, so they must share keys too: configure the %s (see README: Keys for production)", strings.Join(c.Proxy.Ephemeral, ", "))
	}
	if c.StateKeyRandom {
		return errors.New("--redis-url shares legacy sessions between replicas, so they must share the requestState key: set --state-key-file or REMOTEMCP_STATE_KEY")
	}
	return nil
}

// readCredentials reads an OAuth client's id (first line) and secret
// (second line) from file, the value of the flag named flagName.
func readCredentials(flagName, file string) (id, secret string, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", fmt.Errorf("%s: %v", flagName, err)
	}
	id, secret, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(id), strings.TrimSpace(secret), nil
}

// secretSetting is a secret that comes from a file or the environment,
// never from a flag: the trimmed content of file (the value of the flag
// named flagName) when it is set, else the environment variable env.
func secretSetting(getenv func(string) string, env, flagName, file string) (string, error) {
	if file == "" {
		return getenv(env), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %v", flagName, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// hexKey decodes a hex-encoded key of at least 32 bytes (name says which
// in the error); an empty s makes up a random key, and random says so.
func hexKey(name, s string) (key []byte, random bool, err error) {
	if s == "" {
		key = make([]byte, 32)
		rand.Read(key)
		return key, true, nil
	}
	key, err = hex.DecodeString(s)
	if err != nil || len(key) < 32 {
		return nil, false, fmt.Errorf("%s: want at least 32 bytes, hex-encoded (e.g. `openssl rand -hex 32`)", name)
	}
	return key, false, nil
}

// checkURL validates a URL setting: https, or http on loopback only.
func checkURL(name, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("%s is required with this --auth mode", name)
		}
		return nil
	}
	return remotemcp.CheckURL(name, v)
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

// loopback reports whether the listener is on a loopback address; see
// dev for whether development behaviour is on.
func (c *config) loopback() bool {
	host, _, _ := net.SplitHostPort(c.Listen)
	return mcpserver.IsLoopbackHost(host)
}
