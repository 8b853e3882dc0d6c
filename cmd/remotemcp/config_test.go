package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/tools/notes"
	notesmem "github.com/remotemcp/remotemcp/tools/notes/memstore"
)

// configView is what a test compares of a parsed config: the public URL as
// the endpoint it yields, and only the length of the (possibly random)
// requestState key.
type configView struct {
	Listen              string
	Endpoint            string
	Auth                string
	Fixtures            string
	AllowedOrigins      []string
	SessionTTL          time.Duration
	MaxBodyBytes        int64
	MaxBatchMessages    int
	MaxResponseBytes    int
	MaxSessionsPerUser  int
	NoteLimits          notes.Limits
	MaxMemoryStoreBytes int
	ShutdownTimeout     time.Duration
	LogLevel            slog.Level
	LogFormat           string
	StateKeyLen         int
	ResumeWindow        time.Duration
	LogMaxBytes         int64

	Issuer              string
	JWKSURL             string
	Audience            string // what tokens must carry: audience(); the endpoint unless set
	AuthorizationServer string
	IntrospectionURL    string
	IntrospectClientID  string
	IntrospectSecret    string
	ClockSkew           time.Duration
	ScopeRead           string
	ScopeWrite          string
}

func viewOf(c *config) configView {
	return configView{
		Listen:              c.Listen,
		Endpoint:            c.endpoint(),
		Auth:                c.Auth,
		Fixtures:            c.Fixtures,
		AllowedOrigins:      c.AllowedOrigins,
		SessionTTL:          c.SessionTTL,
		MaxBodyBytes:        c.MaxBodyBytes,
		MaxBatchMessages:    c.MaxBatchMessages,
		MaxResponseBytes:    c.MaxResponseBytes,
		MaxSessionsPerUser:  c.MaxSessionsPerUser,
		NoteLimits:          c.NoteLimits,
		MaxMemoryStoreBytes: c.MaxMemoryStoreBytes,
		ShutdownTimeout:     c.ShutdownTimeout,
		LogLevel:            c.LogLevel,
		LogFormat:           c.LogFormat,
		StateKeyLen:         len(c.StateKey),
		ResumeWindow:        c.ResumeWindow,
		LogMaxBytes:         c.LogMaxBytes,

		Issuer:              c.Issuer,
		JWKSURL:             c.JWKSURL,
		Audience:            c.audience(),
		AuthorizationServer: c.AuthorizationServer,
		IntrospectionURL:    c.IntrospectionURL,
		IntrospectClientID:  c.IntrospectClientID,
		IntrospectSecret:    c.IntrospectSecret,
		ClockSkew:           c.ClockSkew,
		ScopeRead:           c.ScopeRead,
		ScopeWrite:          c.ScopeWrite,
	}
}

// defaultView is the config of no flags and an empty environment.
func defaultView() configView {
	return configView{
		Listen:              "127.0.0.1:8080",
		Endpoint:            "http://127.0.0.1:8080/mcp",
		Auth:                "none",
		SessionTTL:          30 * time.Minute,
		MaxBodyBytes:        mcpserver.DefaultMaxBodyBytes,
		MaxBatchMessages:    mcpserver.DefaultMaxBatchMessages,
		MaxResponseBytes:    mcpserver.DefaultMaxResponseBytes,
		MaxSessionsPerUser:  mcpserver.DefaultMaxSessionsPerSubject,
		NoteLimits:          notes.Limits{Notes: notes.DefaultMaxNotes, Bytes: notes.DefaultMaxBytes, Exports: notes.DefaultMaxExports},
		MaxMemoryStoreBytes: notesmem.DefaultMaxBytes,
		ShutdownTimeout:     15 * time.Second,
		LogLevel:            slog.LevelInfo,
		LogFormat:           "text",
		StateKeyLen:         32,
		ResumeWindow:        mcpserver.DefaultResumeWindow,
		LogMaxBytes:         mcpserver.DefaultMaxLoggedBytes,

		ClockSkew:  30 * time.Second,
		ScopeRead:  "notes:read",
		ScopeWrite: "notes:write",
	}
}

// envOf is a getenv backed by a map.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const testKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func TestParseConfig(t *testing.T) {
	for _, tt := range []struct {
		name   string
		args   []string
		env    map[string]string
		modify func(*configView) // applied to defaultView to get the want
	}{
		{name: "defaults"},
		{
			name: "env twins",
			env: map[string]string{
				"REMOTEMCP_LISTEN":           "127.0.0.1:9090",
				"REMOTEMCP_PUBLIC_URL":       "http://localhost:9090",
				"REMOTEMCP_AUTH":             "none",
				"REMOTEMCP_FIXTURES":         "conformance",
				"REMOTEMCP_ALLOWED_ORIGINS":  "https://app.example.com",
				"REMOTEMCP_SESSION_TTL":      "5m",
				"REMOTEMCP_MAX_BODY_BYTES":   "2048",
				"REMOTEMCP_SHUTDOWN_TIMEOUT": "3s",
				"REMOTEMCP_LOG_LEVEL":        "debug",
				"REMOTEMCP_LOG_FORMAT":       "json",
			},
			modify: func(v *configView) {
				v.Listen = "127.0.0.1:9090"
				v.Endpoint = "http://localhost:9090/mcp"
				v.Fixtures = "conformance"
				v.AllowedOrigins = []string{"https://app.example.com"}
				v.SessionTTL = 5 * time.Minute
				v.MaxBodyBytes = 2048
				v.ShutdownTimeout = 3 * time.Second
				v.LogLevel = slog.LevelDebug
				v.LogFormat = "json"
			},
		},
		{
			name: "event log retention env twins",
			env: map[string]string{
				"REMOTEMCP_STREAM_RESUME_WINDOW":  "30s",
				"REMOTEMCP_SESSION_LOG_MAX_BYTES": "1048576",
			},
			modify: func(v *configView) {
				v.ResumeWindow = 30 * time.Second
				v.LogMaxBytes = 1 << 20
			},
		},
		{
			name: "flag wins over env",
			args: []string{"--listen", "127.0.0.1:7070", "--log-level", "warn", "--session-ttl=2m"},
			env: map[string]string{
				"REMOTEMCP_LISTEN":      "127.0.0.1:9090",
				"REMOTEMCP_LOG_LEVEL":   "debug",
				"REMOTEMCP_SESSION_TTL": "5m",
				"REMOTEMCP_LOG_FORMAT":  "json", // no flag: the env value stays
			},
			modify: func(v *configView) {
				v.Listen = "127.0.0.1:7070"
				v.Endpoint = "http://127.0.0.1:7070/mcp"
				v.LogLevel = slog.LevelWarn
				v.SessionTTL = 2 * time.Minute
				v.LogFormat = "json"
			},
		},
		{
			name: "public url trailing slash trimmed",
			args: []string{"--public-url", "http://localhost:8080/"},
			modify: func(v *configView) {
				v.Endpoint = "http://localhost:8080/mcp"
			},
		},
		{
			name: "public url with a base path",
			args: []string{"--public-url", "http://localhost:8080/tools/"},
			modify: func(v *configView) {
				v.Endpoint = "http://localhost:8080/tools/mcp"
			},
		},
		{
			name: "plain http public url on loopback",
			args: []string{"--public-url", "http://localhost:3000"},
			modify: func(v *configView) {
				v.Endpoint = "http://localhost:3000/mcp"
			},
		},
		{
			name: "ipv6 loopback listener",
			args: []string{"--listen", "[::1]:8081"},
			modify: func(v *configView) {
				v.Listen = "[::1]:8081"
				v.Endpoint = "http://[::1]:8081/mcp"
			},
		},
		{
			name: "port 0 keeps a derived public url",
			args: []string{"--listen", "localhost:0"},
			modify: func(v *configView) {
				v.Listen = "localhost:0"
				v.Endpoint = "http://localhost:0/mcp" // serve fills in the bound port
			},
		},
		{
			name: "allowed origins are trimmed and normalized",
			args: []string{"--allowed-origins", " https://app.example.com/ ,http://localhost:5173,,"},
			modify: func(v *configView) {
				v.AllowedOrigins = []string{"https://app.example.com", "http://localhost:5173"}
			},
		},
		{
			name: "auth jwt behind a proxy",
			args: []string{"--auth", "jwt", "--issuer", "https://as.example.com/realms/a", "--listen", "0.0.0.0:8443", "--public-url", "https://mcp.example.com"},
			modify: func(v *configView) {
				v.Auth = "jwt"
				v.Listen = "0.0.0.0:8443"
				v.Endpoint = "https://mcp.example.com/mcp"
				v.Issuer = "https://as.example.com/realms/a"
				v.AuthorizationServer = "https://as.example.com/realms/a" // defaults to the issuer
			},
		},
		{
			name: "auth jwt from env twins",
			env: map[string]string{
				"REMOTEMCP_AUTH":                 "jwt",
				"REMOTEMCP_ISSUER":               "https://as.example.com",
				"REMOTEMCP_JWKS_URL":             "https://as.example.com/keys",
				"REMOTEMCP_AUDIENCE":             "api://remotemcp",
				"REMOTEMCP_AUTHORIZATION_SERVER": "https://login.example.com",
				"REMOTEMCP_CLOCK_SKEW":           "1m",
				"REMOTEMCP_SCOPE_READ":           " mcp.read ",
				"REMOTEMCP_SCOPE_WRITE":          "mcp.write",
			},
			modify: func(v *configView) {
				v.Auth = "jwt"
				v.Issuer = "https://as.example.com"
				v.JWKSURL = "https://as.example.com/keys"
				v.Audience = "api://remotemcp"
				v.AuthorizationServer = "https://login.example.com"
				v.ClockSkew = time.Minute
				v.ScopeRead = "mcp.read"
				v.ScopeWrite = "mcp.write"
			},
		},
		{
			name: "auth jwt with a loopback http issuer",
			args: []string{"--auth", "jwt", "--issuer", "http://127.0.0.1:9000"},
			modify: func(v *configView) {
				v.Auth = "jwt"
				v.Issuer = "http://127.0.0.1:9000"
				v.AuthorizationServer = "http://127.0.0.1:9000"
			},
		},
		{
			name: "auth introspect with env credentials",
			args: []string{"--auth", "introspect", "--issuer", "https://as.example.com", "--introspection-url", "https://as.example.com/introspect"},
			env: map[string]string{
				"REMOTEMCP_INTROSPECTION_CLIENT_ID":     "rs",
				"REMOTEMCP_INTROSPECTION_CLIENT_SECRET": "s3cret",
			},
			modify: func(v *configView) {
				v.Auth = "introspect"
				v.Issuer = "https://as.example.com"
				v.AuthorizationServer = "https://as.example.com"
				v.IntrospectionURL = "https://as.example.com/introspect"
				v.IntrospectClientID = "rs"
				v.IntrospectSecret = "s3cret"
			},
		},
		{
			name: "state key from env",
			env:  map[string]string{"REMOTEMCP_STATE_KEY": testKeyHex + testKeyHex},
			modify: func(v *configView) {
				v.StateKeyLen = 64
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cfg, err := parseConfig(tt.args, envOf(tt.env), &stderr)
			if err != nil {
				t.Fatalf("parseConfig: %v\nstderr: %s", err, stderr.String())
			}
			want := defaultView()
			if tt.modify != nil {
				tt.modify(&want)
			}
			if want.Audience == "" {
				want.Audience = want.Endpoint
			}
			if diff := cmp.Diff(want, viewOf(cfg)); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseConfigStateKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.key")
	if err := os.WriteFile(file, []byte(testKeyHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string // hex of the key
	}{
		{"env", nil, map[string]string{"REMOTEMCP_STATE_KEY": testKeyHex}, testKeyHex},
		{"file, newline trimmed", []string{"--state-key-file", file}, nil, testKeyHex},
		{"file wins over the env key", []string{"--state-key-file", file}, map[string]string{"REMOTEMCP_STATE_KEY": strings.Repeat("ab", 32)}, testKeyHex},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, envOf(tt.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(cfg.StateKey); got != tt.want {
				t.Errorf("state key = %s, want %s", got, tt.want)
			}
		})
	}

	// Without a configured key every process gets its own random one.
	a, errA := parseConfig(nil, envOf(nil), &bytes.Buffer{})
	b, errB := parseConfig(nil, envOf(nil), &bytes.Buffer{})
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if bytes.Equal(a.StateKey, b.StateKey) {
		t.Error("two configs without a key share the same random state key")
	}
}

func TestParseConfigIntrospectionCredentialsFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "introspection")
	if err := os.WriteFile(file, []byte(" file-id \n file-secret \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--auth", "introspect", "--issuer", "https://as.example.com",
		"--introspection-url", "https://as.example.com/introspect", "--introspection-credentials-file", file}
	env := map[string]string{"REMOTEMCP_INTROSPECTION_CLIENT_ID": "env-id", "REMOTEMCP_INTROSPECTION_CLIENT_SECRET": "env-secret"}
	cfg, err := parseConfig(args, envOf(env), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	// The file wins over the environment.
	if diff := cmp.Diff([2]string{"file-id", "file-secret"}, [2]string{cfg.IntrospectClientID, cfg.IntrospectSecret}); diff != "" {
		t.Errorf("credentials (-want +got):\n%s", diff)
	}
}

// TestParseConfigNonLoopbackWithoutPublicURL: without --public-url the
// canonical URL is derived from --listen as http://host:port. For a
// non-loopback listener that URL is never what remote clients use, so the
// listener must be refused with a message about what the user did set.
func TestParseConfigNonLoopbackWithoutPublicURL(t *testing.T) {
	jwt := []string{"--auth", "jwt", "--issuer", "https://as.example.com"}
	for _, tt := range []struct {
		name string
		args []string
		bug  string // skip reason while the case fails
	}{
		{
			name: "auth none, specific IP",
			args: []string{"--listen", "192.0.2.1:8080"},
			bug: "with --listen 192.0.2.1:8080 and no --public-url the error blames --public-url \"http://192.0.2.1:8080\", " +
				"a value the user never set (the derived URL is checked before the listener)",
		},
		{
			name: "auth jwt, specific IP",
			args: slices.Concat(jwt, []string{"--listen", "192.0.2.1:8080"}),
			bug:  "same as above with --auth jwt: the error quotes a --public-url the user never set",
		},
		{
			name: "auth jwt, all interfaces",
			args: slices.Concat(jwt, []string{"--listen", "0.0.0.0:8080"}),
			bug: "--auth jwt --listen 0.0.0.0:8080 without --public-url is accepted with the canonical URL " +
				"http://127.0.0.1:8080/mcp, which becomes the token audience and the PRM resource: remote clients " +
				"can never get a token for it; require --public-url for a non-loopback listener",
		},
		{
			name: "auth jwt, all interfaces ipv6",
			args: slices.Concat(jwt, []string{"--listen", "[::]:8080"}),
			bug:  "as above for [::]:8080",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, envOf(nil), &bytes.Buffer{})
			if err == nil {
				t.Fatalf("accepted, with endpoint %s; want an error asking for --public-url", cfg.endpoint())
			}
			if strings.Contains(err.Error(), `--public-url "http://`) {
				t.Errorf("error %q quotes a derived --public-url the user never set", err)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		// wantErr are substrings the error must contain, so that it names
		// the setting and the offending value.
		wantErr []string
	}{
		{"listen without port", []string{"--listen", "127.0.0.1"}, nil, []string{"--listen", `"127.0.0.1"`, "host:port"}},
		{"listen bad port", []string{"--listen", "127.0.0.1:99999"}, nil, []string{"--listen", "bad port"}},
		{"auth none on all interfaces", []string{"--listen", "0.0.0.0:8080"}, nil, []string{"--auth none", "non-loopback", "0.0.0.0:8080"}},
		{"auth none on an empty host", []string{"--listen", ":8080"}, nil, []string{"--auth none", "non-loopback"}},
		{"auth none from the env listener", nil, map[string]string{"REMOTEMCP_LISTEN": "0.0.0.0:8080"}, []string{"--auth none", "non-loopback"}},
		{"auth none on a non-loopback IP", []string{"--listen", "192.0.2.1:8080", "--public-url", "https://mcp.example.com"}, nil, []string{"--auth none", "non-loopback", "192.0.2.1:8080"}},
		{"auth none behind a reverse proxy", []string{"--listen", "127.0.0.1:8080", "--public-url", "https://mcp.example.com"}, nil, []string{"--auth none", "both the listener and --public-url", "127.0.0.1:8080", "https://mcp.example.com"}},
		{"auth none behind a reverse proxy from the env", nil, map[string]string{"REMOTEMCP_PUBLIC_URL": "https://mcp.example.com"}, []string{"--auth none", "https://mcp.example.com"}},
		{"auth unknown", []string{"--auth", "basic"}, nil, []string{"--auth", `"basic"`, "unknown"}},
		{"auth jwt without issuer", []string{"--auth", "jwt"}, nil, []string{"--issuer", "required"}},
		{"auth jwt plain http issuer", []string{"--auth", "jwt", "--issuer", "http://as.example.com"}, nil, []string{"--issuer", "plain http"}},
		{"auth jwt bad jwks url", []string{"--auth", "jwt", "--issuer", "https://as.example.com", "--jwks-url", "ftp://as.example.com/keys"}, nil, []string{"--jwks-url", "ftp://"}},
		{"auth jwt plain http authorization server", []string{"--auth", "jwt", "--issuer", "https://as.example.com", "--authorization-server", "http://login.example.com"}, nil, []string{"--authorization-server", "plain http"}},
		{"auth jwt clock skew too large", []string{"--auth", "jwt", "--issuer", "https://as.example.com", "--clock-skew", "10m"}, nil, []string{"--clock-skew", "10m"}},
		{"auth jwt scope with a space", []string{"--auth", "jwt", "--issuer", "https://as.example.com", "--scope-read", "a b"}, nil, []string{"--scope-read", "single scope"}},
		{"auth introspect without url", []string{"--auth", "introspect", "--issuer", "https://as.example.com"}, nil, []string{"--introspection-url", "required"}},
		{"auth introspect without credentials", []string{"--auth", "introspect", "--issuer", "https://as.example.com", "--introspection-url", "https://as.example.com/introspect"}, nil, []string{"REMOTEMCP_INTROSPECTION_CLIENT_ID", "--introspection-credentials-file"}},
		{"fixtures conformance on non-loopback", []string{"--auth", "jwt", "--issuer", "https://as.example.com", "--listen", "0.0.0.0:8080", "--public-url", "https://mcp.example.com", "--fixtures", "conformance"}, nil, []string{"--fixtures conformance", "loopback only", "0.0.0.0:8080"}},
		{"fixtures conformance behind a reverse proxy", []string{"--auth", "jwt", "--issuer", "https://as.example.com", "--public-url", "https://mcp.example.com", "--fixtures", "conformance"}, nil, []string{"--fixtures conformance", "loopback only", "https://mcp.example.com"}},
		{"fixtures unknown", []string{"--fixtures", "bogus"}, nil, []string{"--fixtures", `"bogus"`, "unknown"}},
		{"proxy dev upstream on non-loopback", []string{"--auth", "proxy", "--listen", "0.0.0.0:8080", "--public-url", "https://mcp.example.com"}, nil, []string{"--upstream dev", "non-loopback"}},
		{"proxy dev upstream behind a reverse proxy", []string{"--auth", "proxy", "--public-url", "https://mcp.example.com"}, nil, []string{"--upstream dev", "non-loopback", "public URL"}},
		{"proxy unknown upstream", []string{"--auth", "proxy", "--upstream", "myspace"}, nil, []string{"--upstream", `"myspace"`, "unknown"}},
		{"proxy github without credentials", []string{"--auth", "proxy", "--upstream", "github"}, nil, []string{"REMOTEMCP_UPSTREAM_CLIENT_ID", "--upstream-credentials-file"}},
		{"proxy oidc plain http issuer", []string{"--auth", "proxy", "--upstream-issuer", "http://idp.example.com"}, map[string]string{"REMOTEMCP_UPSTREAM_CLIENT_ID": "a", "REMOTEMCP_UPSTREAM_CLIENT_SECRET": "b"}, []string{"--upstream-issuer", "plain http"}},
		{"proxy google with an issuer", []string{"--auth", "proxy", "--upstream", "google", "--upstream-issuer", "https://idp.example.com"}, map[string]string{"REMOTEMCP_UPSTREAM_CLIENT_ID": "a", "REMOTEMCP_UPSTREAM_CLIENT_SECRET": "b"}, []string{"--upstream google", "fixed issuer"}},
		{"proxy with an external issuer", []string{"--auth", "proxy", "--issuer", "https://as.example.com"}, nil, []string{"--auth proxy", "drop --issuer"}},
		{"proxy access token lifetime too long", []string{"--auth", "proxy", "--access-token-lifetime", "48h"}, nil, []string{"--access-token-lifetime", "48h"}},
		{"proxy refresh grace too long", []string{"--auth", "proxy", "--refresh-grace", "1h"}, nil, []string{"--refresh-grace", "1h"}},
		{"proxy no registered clients", []string{"--auth", "proxy", "--max-registered-clients", "0"}, nil, []string{"--max-registered-clients", "positive"}},
		{"proxy unused registration lifetime too short", []string{"--auth", "proxy", "--unused-registration-lifetime", "1m"}, nil, []string{"--unused-registration-lifetime", "between 10m and 720h"}},
		{"proxy no metadata fetches per host", []string{"--auth", "proxy", "--client-metadata-fetches-per-host", "0"}, nil, []string{"--client-metadata-fetches-per-host", "between 1 and 32"}},
		{"proxy bad vault keys", []string{"--auth", "proxy"}, map[string]string{"REMOTEMCP_VAULT_KEYS": "k1:abcd"}, []string{"vault keys"}},
		{"proxy short cookie key", []string{"--auth", "proxy"}, map[string]string{"REMOTEMCP_COOKIE_KEY": "abcd"}, []string{"cookie key", "32 bytes"}},
		{"proxy missing signing key file", []string{"--auth", "proxy", "--signing-key-file", "/nonexistent/signing.json"}, nil, []string{"--signing-key-file", "/nonexistent/signing.json"}},
		{"public url with query", []string{"--public-url", "https://mcp.example.com/?tenant=a"}, nil, []string{"--public-url", "without query"}},
		{"public url with fragment", []string{"--public-url", "https://mcp.example.com/#x"}, nil, []string{"--public-url", "fragment"}},
		{"public url with userinfo", []string{"--public-url", "https://user:pw@mcp.example.com"}, nil, []string{"--public-url"}},
		{"public url not http", []string{"--public-url", "ftp://mcp.example.com"}, nil, []string{"--public-url", "ftp://mcp.example.com", "http(s)"}},
		{"public url relative", []string{"--public-url", "/mcp"}, nil, []string{"--public-url", "absolute"}},
		{"public url plain http off loopback", []string{"--public-url", "http://mcp.example.com"}, nil, []string{"--public-url", "plain http", "https"}},
		{"allowed origin with a path", []string{"--allowed-origins", "https://app.example.com/app"}, nil, []string{"--allowed-origins", `"https://app.example.com/app"`}},
		{"allowed origin with a query", []string{"--allowed-origins", "https://app.example.com?x=1"}, nil, []string{"--allowed-origins"}},
		{"allowed origin without scheme", []string{"--allowed-origins", "app.example.com"}, nil, []string{"--allowed-origins", `"app.example.com"`}},
		{"session ttl too short", []string{"--session-ttl", "1s"}, nil, []string{"--session-ttl", "1s", "at least 1m"}},
		{"session ttl not a duration", []string{"--session-ttl", "soon"}, nil, []string{"session-ttl", "soon"}},
		{"resume window too short", []string{"--stream-resume-window", "10ms"}, nil, []string{"--stream-resume-window", "10ms", "at least 1s"}},
		{"resume window past the session ttl", []string{"--stream-resume-window", "1h"}, nil, []string{"--stream-resume-window", "1h0m0s", "--session-ttl"}},
		{"session log cap too small", []string{"--session-log-max-bytes", "100"}, nil, []string{"--session-log-max-bytes", "100", "65536"}},
		{"env value not a duration", nil, map[string]string{"REMOTEMCP_SESSION_TTL": "soon"}, []string{"REMOTEMCP_SESSION_TTL", "soon"}},
		{"max body too small", []string{"--max-body-bytes", "10"}, nil, []string{"--max-body-bytes", "1024"}},
		{"batch limit too small", []string{"--max-batch-messages", "0"}, nil, []string{"--max-batch-messages", "at least 1"}},
		{"response limit too small", []string{"--max-response-bytes", "1000"}, nil, []string{"--max-response-bytes", "65536"}},
		{"session limit zero", []string{"--max-sessions-per-user", "0"}, nil, []string{"--max-sessions-per-user", "at least 1"}},
		{"note bytes under one note", []string{"--max-note-bytes-per-user", "1000"}, nil, []string{"--max-note-bytes-per-user", "65536"}},
		{"memory store too small", []string{"--max-memory-store-bytes", "1000"}, nil, []string{"--max-memory-store-bytes", "1048576"}},
		{"shutdown timeout zero", []string{"--shutdown-timeout", "0s"}, nil, []string{"--shutdown-timeout", "positive"}},
		{"log level unknown", []string{"--log-level", "bogus"}, nil, []string{"--log-level", `"bogus"`}},
		{"log format unknown", []string{"--log-format", "xml"}, nil, []string{"--log-format", `"xml"`}},
		{"state key too short", nil, map[string]string{"REMOTEMCP_STATE_KEY": "abcd"}, []string{"requestState key", "32 bytes", "hex"}},
		{"state key not hex", nil, map[string]string{"REMOTEMCP_STATE_KEY": strings.Repeat("zz", 32)}, []string{"requestState key", "hex"}},
		{"state key file missing", []string{"--state-key-file", filepath.Join(t.TempDir(), "nope")}, nil, []string{"--state-key-file"}},
		{"positional argument", []string{"serve"}, nil, []string{`unexpected argument "serve"`}},
		{"unknown flag", []string{"--port", "80"}, nil, []string{"port"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, envOf(tt.env), &bytes.Buffer{})
			if err == nil {
				t.Fatalf("parseConfig succeeded with %+v, want an error", viewOf(cfg))
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--listen", "127.0.0.1:1", "-help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseConfig(args, envOf(nil), &stderr)
			if !errors.Is(err, errHelp) {
				t.Fatalf("err = %v, want errHelp", err)
			}
			for _, s := range []string{"Usage: remotemcp", "REMOTEMCP_LISTEN", "-public-url", "-state-key-file"} {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("usage does not mention %q:\n%s", s, stderr.String())
				}
			}
		})
	}
	// run reports help the same way, without serving.
	if err := run(t.Context(), []string{"--help"}, envOf(nil), &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, errHelp) {
		t.Errorf("run --help = %v, want errHelp", err)
	}
}

func TestEnvName(t *testing.T) {
	for _, tt := range []struct{ flag, want string }{
		{"listen", "REMOTEMCP_LISTEN"},
		{"public-url", "REMOTEMCP_PUBLIC_URL"},
		{"state-key-file", "REMOTEMCP_STATE_KEY_FILE"},
	} {
		if got := envName(tt.flag); got != tt.want {
			t.Errorf("envName(%q) = %q, want %q", tt.flag, got, tt.want)
		}
	}
}

// TestSigningKeyCommand: `remotemcp signing-key` prints a ring that
// --signing-key-file loads, and --rotate keeps the old key published.
func TestSigningKeyCommand(t *testing.T) {
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"signing-key"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "signing.json")
	if err := os.WriteFile(file, []byte(out.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig([]string{"--auth", "proxy", "--signing-key-file", file}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if n := cfg.Proxy.SigningKeys.JWKS(time.Now()).Len(); n != 1 {
		t.Errorf("a new ring publishes %d keys, want 1", n)
	}
	var rotated strings.Builder
	if err := run(t.Context(), []string{"signing-key", "--rotate", file}, func(string) string { return "" }, &rotated, &errOut); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(rotated.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = parseConfig([]string{"--auth", "proxy", "--signing-key-file", file}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if n := cfg.Proxy.SigningKeys.JWKS(time.Now()).Len(); n != 2 {
		t.Errorf("a rotated ring publishes %d keys, want 2 (the new and the retired one)", n)
	}
	if strings.Contains(errOut.String(), `"d"`) {
		t.Error("private key material on stderr")
	}
}
