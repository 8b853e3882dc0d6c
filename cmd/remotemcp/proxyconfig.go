package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/remotemcp/remotemcp/authz/token"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// proxyConfig is the configuration of --auth proxy: our own authorization
// server in front of an upstream identity provider.
type proxyConfig struct {
	Upstream       string // dev, oidc, github, google
	UpstreamIssuer string
	ClientID       string
	ClientSecret   string
	Scopes         []string
	// SigningKeys is the access-token key ring (a MarshalKeyRing
	// document); nil means a new key per process.
	SigningKeys *token.KeyRing
	VaultKeys   *upstream.EncryptionKeys
	CookieKey   []byte
	// Ephemeral lists the secrets made up at start because none was
	// configured: fine for one replica in development, logged loudly.
	Ephemeral []string

	// TrustedProxies are the load balancers whose X-Forwarded-For is
	// believed, for per-address rate limits.
	TrustedProxies []netip.Prefix
	// RateLimits turns the OAuth endpoints' rate limits on.
	RateLimits bool

	AccessTokenLifetime time.Duration
	RefreshLifetime     time.Duration
	RefreshGrace        time.Duration
	CIMD                bool
	// CIMDFetchesPerHost bounds the metadata-document fetches in flight
	// to one host.
	CIMDFetchesPerHost int
	// MaxClients bounds the registered clients; UnusedRegistrationLifetime
	// is how long a registration lives until its first token.
	MaxClients                 int
	UnusedRegistrationLifetime time.Duration
}

type proxyFlags struct {
	upstream, upstreamIssuer, credsFile, scopes  *string
	signingKeyFile, vaultKeysFile, cookieKeyFile *string
	accessTTL, refreshTTL, refreshGrace          *time.Duration
	cimd                                         *bool
	cimdPerHost, maxClients                      *int
	unusedRegistration                           *time.Duration
	trustedProxies                               *string
	rateLimits                                   *string
}

func addProxyFlags(fs *flag.FlagSet) *proxyFlags {
	pf := &proxyFlags{
		upstream:       fs.String("upstream", "", "--auth proxy: the identity provider users sign in with: dev (built in, loopback only; the default when nothing else is configured), oidc (any OpenID provider, see --upstream-issuer), github or google"),
		upstreamIssuer: fs.String("upstream-issuer", "", "--auth proxy: the upstream OpenID provider's issuer URL (discovery from <issuer>/.well-known/openid-configuration); implies --upstream oidc"),
		credsFile:      fs.String("upstream-credentials-file", "", "--auth proxy: file with the upstream client id on the first line and its secret on the second (or set REMOTEMCP_UPSTREAM_CLIENT_ID and REMOTEMCP_UPSTREAM_CLIENT_SECRET)"),
		scopes:         fs.String("upstream-scopes", "", "--auth proxy: space-separated scopes to ask the upstream for (default: openid profile email for OIDC and Google, read:user user:email for GitHub; add offline_access where the provider needs it for refresh tokens)"),
		signingKeyFile: fs.String("signing-key-file", "", "--auth proxy: JSON key ring that signs our access tokens, shared by all replicas (default: a new key per process; tokens then die with it)"),
		vaultKeysFile:  fs.String("vault-keys-file", "", "--auth proxy: file holding the upstream-token encryption keys as id:hex64[,id:hex64...], the first one sealing (or env REMOTEMCP_VAULT_KEYS; default: a new key per process)"),
		cookieKeyFile:  fs.String("cookie-key-file", "", "--auth proxy: file holding the hex key (≥32 bytes) that signs consent cookies and CSRF tokens (or env REMOTEMCP_COOKIE_KEY; default: a new key per process)"),
		accessTTL:      fs.Duration("access-token-lifetime", 10*time.Minute, "--auth proxy: lifetime of our access tokens"),
		refreshTTL:     fs.Duration("refresh-token-lifetime", 30*24*time.Hour, "--auth proxy: lifetime of a grant and its refresh tokens since last use"),
		refreshGrace:   fs.Duration("refresh-grace", 30*time.Second, "--auth proxy: how long a rotated refresh token stays valid for a retry by the same client"),
		rateLimits:     fs.String("rate-limits", "on", "--auth proxy: on (per client address and client id on /register, /authorize, /token, /revoke and /introspect, shared through --redis-url; 429 with Retry-After) or off"),
		trustedProxies: fs.String("trusted-proxies", "", "--auth proxy: comma-separated CIDRs of the load balancers whose X-Forwarded-For names the client address for rate limits (default: none; never include addresses the internet can reach you from)"),
		cimd:           fs.Bool("client-id-metadata-documents", true, "--auth proxy: accept https client ids whose metadata document we fetch (CIMD)"),
	}
	pf.maxClients = fs.Int("max-registered-clients", 20000, "--auth proxy: registered clients held at most; past it /register answers 503 temporarily_unavailable and existing clients keep working")
	pf.unusedRegistration = fs.Duration("unused-registration-lifetime", 6*time.Hour, "--auth proxy: how long a registration lives until its first token (from then on, 30 days since its last token request)")
	pf.cimdPerHost = fs.Int("client-metadata-fetches-per-host", 4, "--auth proxy: metadata-document fetches in flight to one host (of 32 in all), so that one host's slow documents cannot hold them all")
	return pf
}

// parseProxy reads the --auth proxy settings; secrets come from the
// environment or files only, never from flags.
func parseProxy(pf *proxyFlags, getenv func(string) string, dev bool) (*proxyConfig, error) {
	pc := &proxyConfig{
		Upstream: *pf.upstream, UpstreamIssuer: *pf.upstreamIssuer, Scopes: strings.Fields(*pf.scopes),
		AccessTokenLifetime: *pf.accessTTL, RefreshLifetime: *pf.refreshTTL, RefreshGrace: *pf.refreshGrace, CIMD: *pf.cimd,
		CIMDFetchesPerHost: *pf.cimdPerHost, MaxClients: *pf.maxClients, UnusedRegistrationLifetime: *pf.unusedRegistration,
	}
	if pc.MaxClients < 1 {
		return nil, fmt.Errorf("--max-registered-clients %d: must be positive", pc.MaxClients)
	}
	if pc.UnusedRegistrationLifetime < 10*time.Minute || pc.UnusedRegistrationLifetime > 30*24*time.Hour {
		return nil, fmt.Errorf("--unused-registration-lifetime %v: must be between 10m and 720h", pc.UnusedRegistrationLifetime)
	}
	if pc.CIMDFetchesPerHost < 1 || pc.CIMDFetchesPerHost > 32 {
		return nil, fmt.Errorf("--client-metadata-fetches-per-host %d: must be between 1 and 32", pc.CIMDFetchesPerHost)
	}
	if pc.Upstream == "" {
		pc.Upstream = "dev"
		if pc.UpstreamIssuer != "" {
			pc.Upstream = "oidc"
		}
	}
	pc.ClientID = getenv("REMOTEMCP_UPSTREAM_CLIENT_ID")
	pc.ClientSecret = getenv("REMOTEMCP_UPSTREAM_CLIENT_SECRET")
	if *pf.credsFile != "" {
		var err error
		if pc.ClientID, pc.ClientSecret, err = readCredentials("--upstream-credentials-file", *pf.credsFile); err != nil {
			return nil, err
		}
	}
	if err := pc.setRateLimits(*pf.rateLimits, *pf.trustedProxies); err != nil {
		return nil, err
	}
	if err := pc.checkUpstream(dev); err != nil {
		return nil, err
	}
	if err := pc.checkLifetimes(); err != nil {
		return nil, err
	}
	if err := pc.setKeys(pf, getenv); err != nil {
		return nil, err
	}
	return pc, nil
}

// setRateLimits reads --rate-limits and --trusted-proxies.
func (pc *proxyConfig) setRateLimits(rateLimits, trustedProxies string) error {
	switch rateLimits {
	case "on":
		pc.RateLimits = true
	case "off":
	default:
		return fmt.Errorf("--rate-limits %q: want on or off", rateLimits)
	}
	for _, c := range strings.Split(trustedProxies, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			if a, aerr := netip.ParseAddr(c); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				return fmt.Errorf("--trusted-proxies: %q is not a CIDR like 10.0.0.0/8", c)
			}
		}
		pc.TrustedProxies = append(pc.TrustedProxies, p.Masked())
	}
	return nil
}

// checkUpstream checks that the --upstream provider has what it needs:
// the development provider only when dev (listener and public URL on
// loopback), the others an issuer where it is not fixed, and client
// credentials.
func (pc *proxyConfig) checkUpstream(dev bool) error {
	switch pc.Upstream {
	case "dev":
		if !dev {
			return errors.New("--upstream dev is the built-in development identity provider: it is refused on a non-loopback listener or public URL (both must be on loopback); configure --upstream oidc, github or google")
		}
		if pc.UpstreamIssuer != "" || pc.ClientID != "" {
			return errors.New("--upstream dev takes no --upstream-issuer or upstream credentials")
		}
	case "oidc", "github", "google":
		if pc.Upstream == "oidc" {
			if err := checkURL("--upstream-issuer", pc.UpstreamIssuer, true); err != nil {
				return err
			}
		} else if pc.UpstreamIssuer != "" {
			return fmt.Errorf("--upstream %s has a fixed issuer; drop --upstream-issuer", pc.Upstream)
		}
		if pc.ClientID == "" || pc.ClientSecret == "" {
			return fmt.Errorf("--upstream %s needs the client registered with it: set REMOTEMCP_UPSTREAM_CLIENT_ID and REMOTEMCP_UPSTREAM_CLIENT_SECRET, or --upstream-credentials-file", pc.Upstream)
		}
	default:
		return fmt.Errorf("--upstream %q: unknown (supported: dev, oidc, github, google)", pc.Upstream)
	}
	return nil
}

// checkLifetimes checks the token lifetimes and the refresh grace.
func (pc *proxyConfig) checkLifetimes() error {
	if pc.AccessTokenLifetime < 5*time.Second || pc.AccessTokenLifetime > 24*time.Hour {
		return fmt.Errorf("--access-token-lifetime %v: must be between 5s and 24h", pc.AccessTokenLifetime)
	}
	if pc.RefreshGrace < time.Second || pc.RefreshGrace > 5*time.Minute {
		return fmt.Errorf("--refresh-grace %v: must be between 1s and 5m", pc.RefreshGrace)
	}
	if pc.RefreshLifetime < time.Hour {
		return fmt.Errorf("--refresh-token-lifetime %v: must be at least 1h", pc.RefreshLifetime)
	}
	return nil
}

// setKeys reads the signing key ring, the vault keys and the cookie key;
// each one not configured is made up for this process and listed in
// Ephemeral.
func (pc *proxyConfig) setKeys(pf *proxyFlags, getenv func(string) string) error {
	ring, made, err := signingKeys(*pf.signingKeyFile)
	if err != nil {
		return err
	}
	pc.SigningKeys = ring
	if made {
		pc.Ephemeral = append(pc.Ephemeral, "signing key")
	}

	vault, err := secretSetting(getenv, "REMOTEMCP_VAULT_KEYS", "--vault-keys-file", *pf.vaultKeysFile)
	if err != nil {
		return err
	}
	if vault == "" {
		k := make([]byte, 32)
		rand.Read(k)
		vault = "ephemeral:" + hex.EncodeToString(k)
		pc.Ephemeral = append(pc.Ephemeral, "vault key")
	}
	if pc.VaultKeys, err = upstream.ParseEncryptionKeys(vault); err != nil {
		return fmt.Errorf("vault keys: %v", err)
	}

	cookie, err := secretSetting(getenv, "REMOTEMCP_COOKIE_KEY", "--cookie-key-file", *pf.cookieKeyFile)
	if err != nil {
		return err
	}
	if pc.CookieKey, made, err = hexKey("cookie key", cookie); err != nil {
		return err
	}
	if made {
		pc.Ephemeral = append(pc.Ephemeral, "cookie key")
	}
	return nil
}

// signingKeys reads the access-token key ring of --signing-key-file, or
// makes up a ring of one new key when file is empty (made says so).
func signingKeys(file string) (ring *token.KeyRing, made bool, err error) {
	if file == "" {
		k, err := token.GenerateKey()
		if err != nil {
			return nil, false, err
		}
		ring, err = token.NewKeyRing(k)
		return ring, true, err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, false, fmt.Errorf("--signing-key-file: %v", err)
	}
	if ring, err = token.UnmarshalKeyRing(b); err != nil {
		return nil, false, fmt.Errorf("--signing-key-file: %v", err)
	}
	return ring, false, nil
}
