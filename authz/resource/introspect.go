package resource

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
	"github.com/remotemcp/remotemcp/internal/ttlcache"
)

// IntrospectionOptions configures an Introspector.
type IntrospectionOptions struct {
	// URL is the RFC 7662 introspection endpoint. REQUIRED.
	URL string
	// ClientID and ClientSecret authenticate us to it (client_secret_basic).
	// They come from the environment or a file, never a flag.
	ClientID, ClientSecret string
	// Audience is the canonical MCP URL; the response's aud must contain it.
	// REQUIRED.
	Audience string
	// Issuer, if set, must equal the response's iss when it has one.
	Issuer string
	// MaxCache bounds how long an active token is trusted without asking
	// again (never beyond its exp). Default 2 minutes.
	MaxCache time.Duration
	// NegativeCache is how long an inactive token is remembered. Default 10s.
	NegativeCache time.Duration
	// ClockSkew tolerated on nbf. Zero means the default, 30s; a negative
	// value means none.
	ClockSkew time.Duration
	// HTTPClient calls the endpoint; default a client with a 5s timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// GroupsClaim names the response member that holds the user's groups
	// or roles, put in TokenInfo.Extra["groups"] as JWTOptions.GroupsClaim
	// says. Default "groups".
	GroupsClaim string
}

// An Introspector verifies opaque access tokens with RFC 7662 introspection,
// caching answers so that the authorization server is not asked on every
// request.
type Introspector struct {
	o IntrospectionOptions
	// cache holds the answers by the SHA-256 of the token, each until
	// MaxCache (never beyond the token's exp) or NegativeCache.
	cache *ttlcache.Cache[[sha256.Size]byte, introspected]
}

type introspected struct {
	info *auth.TokenInfo // nil: inactive
	why  string
}

// maxIntrospectionCache bounds the cache's entries.
const maxIntrospectionCache = 10000

// NewIntrospector returns an Introspector.
func NewIntrospector(options *IntrospectionOptions) (*Introspector, error) {
	var opts IntrospectionOptions
	if options != nil {
		opts = *options
	}
	if opts.URL == "" || opts.Audience == "" {
		return nil, errors.New("authz: introspection needs an endpoint URL and an audience")
	}
	if opts.ClientID == "" || opts.ClientSecret == "" {
		return nil, errors.New("authz: introspection needs client credentials")
	}
	if opts.MaxCache <= 0 {
		opts.MaxCache = 2 * time.Minute
	}
	if opts.NegativeCache <= 0 {
		opts.NegativeCache = 10 * time.Second
	}
	switch {
	case opts.ClockSkew == 0:
		opts.ClockSkew = 30 * time.Second
	case opts.ClockSkew < 0:
		opts.ClockSkew = 0
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.GroupsClaim == "" {
		opts.GroupsClaim = "groups"
	}
	return &Introspector{o: opts, cache: ttlcache.New[[sha256.Size]byte, introspected](maxIntrospectionCache)}, nil
}

// Verify implements Verifier.
func (i *Introspector) Verify(ctx context.Context, token string) (*auth.TokenInfo, error) {
	key := sha256.Sum256([]byte(token))
	now := i.o.Now()
	if e, ok := i.cache.Get(key, now); ok {
		if e.info == nil {
			return nil, tokencheck.Invalid("%s", e.why)
		}
		return own(e.info), nil
	}
	info, why, err := i.introspect(ctx, token)
	if err != nil {
		return nil, err
	}
	until := now.Add(i.o.NegativeCache)
	if info != nil {
		until = now.Add(i.o.MaxCache)
		if !info.Expiration.IsZero() && info.Expiration.Before(until) {
			until = info.Expiration
		}
	}
	i.cache.Set(key, introspected{info: info, why: why}, until, now)
	if info == nil {
		return nil, tokencheck.Invalid("%s", why)
	}
	return own(info), nil
}

// own is a copy of a cached TokenInfo for one caller: its scopes and
// extra (groups included) are its own.
func own(info *auth.TokenInfo) *auth.TokenInfo {
	c := *info
	c.Scopes = slices.Clone(info.Scopes)
	c.Extra = tokencheck.CloneExtra(info.Extra)
	return &c
}

// introspect asks the endpoint. A refusal returns why; a failure to get an
// answer returns ErrUnavailable.
func (i *Introspector) introspect(ctx context.Context, token string) (info *auth.TokenInfo, why string, err error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.o.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", authz.ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: form-encode the credentials before Basic.
	req.SetBasicAuth(url.QueryEscape(i.o.ClientID), url.QueryEscape(i.o.ClientSecret))
	resp, err := i.o.HTTPClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%w: introspection: %v", authz.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Our credentials or the endpoint are wrong, or it is down: either
		// way not the client's fault, so never a 401 for the client.
		return nil, "", fmt.Errorf("%w: introspection answered %d", authz.ErrUnavailable, resp.StatusCode)
	}
	var r struct {
		Active   bool            `json:"active"`
		Sub      string          `json:"sub"`
		Scope    string          `json:"scope"`
		ClientID string          `json:"client_id"`
		Exp      int64           `json:"exp"`
		Nbf      int64           `json:"nbf"`
		Type     string          `json:"token_type"`
		Use      string          `json:"token_use"`
		Iss      string          `json:"iss"`
		Aud      json.RawMessage `json:"aud"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("%w: introspection response: %v", authz.ErrUnavailable, err)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, "", fmt.Errorf("%w: introspection response: %v", authz.ErrUnavailable, err)
	}
	switch {
	case !r.Active:
		return nil, "the token is not active", nil
	case r.Sub == "":
		return nil, "the token has no subject", nil
	case !accessTokenType(r.Type) || (r.Use != "" && r.Use != "access_token"):
		return nil, "the token is not an access token", nil
	case r.Nbf > 0 && i.o.Now().Add(i.o.ClockSkew).Before(time.Unix(r.Nbf, 0)):
		return nil, "the token is not valid yet", nil
	case i.o.Issuer != "" && r.Iss != "" && r.Iss != i.o.Issuer:
		return nil, "the token was issued by another authorization server", nil
	case !slices.ContainsFunc(audiences(r.Aud), func(a string) bool { return authz.SameResource(a, i.o.Audience) }):
		return nil, "the token was issued for another resource", nil
	}
	info = &auth.TokenInfo{UserID: r.Sub, Scopes: authz.ParseScope(r.Scope), Extra: map[string]any{}}
	if r.Exp > 0 {
		info.Expiration = time.Unix(r.Exp, 0)
		if !i.o.Now().Before(info.Expiration) {
			return nil, "the token has expired", nil
		}
	}
	if r.ClientID != "" {
		info.Extra["client_id"] = r.ClientID
	}
	var user map[string]any
	if json.Unmarshal(body, &user) == nil {
		tokencheck.SetUserClaims(info.Extra, user[i.o.GroupsClaim], user["email"], user["email_verified"])
	}
	return info, "", nil
}

// accessTokenType reports whether an introspection answer's token_type
// names an access token that a bearer may present. RFC 7662 §2.2 says
// token_type is the RFC 6749 §7.1 access token type, so conforming servers
// answer "Bearer" (any case, RFC 6750); others answer "access_token" or the
// RFC 8693 URI. Some servers answer active for refresh tokens too and say so
// only here ("refresh_token", "Refresh", the RFC 8693 refresh URI); those,
// and anything else we cannot name, are refused. "DPoP" is refused as well:
// a DPoP-bound token needs a proof of possession, which a bearer resource
// server does not check (RFC 9449 §7.1). An answer without token_type is
// accepted, as the member is optional.
func accessTokenType(t string) bool {
	switch strings.ToLower(t) {
	case "", "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token":
		return true
	}
	return false
}

// audiences reads aud, a string or a list of strings.
func audiences(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil && one != "" {
		return []string{one}
	}
	var many []string
	json.Unmarshal(raw, &many)
	return many
}
