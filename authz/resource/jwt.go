package resource

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
)

// JWTOptions configures a JWTVerifier.
type JWTOptions struct {
	// Issuer is the authorization server's issuer identifier; the iss claim
	// must equal it exactly. REQUIRED.
	Issuer string
	// JWKSURL is the authorization server's JWK Set. REQUIRED (cmd discovers
	// it from the issuer's metadata when not configured).
	JWKSURL string
	// Audience is the canonical MCP URL; aud must contain it, give or take a
	// trailing slash. REQUIRED.
	Audience string
	// ClockSkew tolerated on exp, nbf and iat. Zero means the default,
	// 30s; a negative value means none.
	ClockSkew time.Duration
	// RefreshInterval bounds how often an unknown kid forces a JWKS refresh.
	// Default 30s.
	RefreshInterval time.Duration
	// StartupTimeout bounds the first JWKS fetch. Default 4s.
	StartupTimeout time.Duration
	// HTTPClient fetches the JWKS; default a client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// VerifiedCacheSize bounds how many verified tokens Verify remembers
	// (by SHA-256), so that a client's next request with the same token
	// skips parsing and the signature check while the JWKS still serves
	// the very key that verified it; expiry is checked on every request.
	// Zero means 10 000; negative, none.
	VerifiedCacheSize int
	// GroupsClaim names the claim that holds the user's groups or roles
	// (an array of strings, a string, or an object whose keys are the
	// names), put in TokenInfo.Extra["groups"] as a sorted []string of at
	// most 100 names. Default "groups".
	GroupsClaim string
	// CacheLookup, if set, is told of each lookup of a token in the
	// verified-token cache: hit or miss (metrics). It must be cheap and
	// safe for concurrent use.
	CacheLookup func(hit bool)
}

// A jwtVerified is what JWTVerifier.Verify learned from a token it
// verified in full.
type jwtVerified struct {
	kid  string
	key  jwk.Key // the key of the JWKS that verified it
	info *auth.TokenInfo
}

// A JWTVerifier verifies JWT access tokens (RFC 9068) issued by an external
// authorization server, against its JWKS, kept fresh by a jwk.Cache.
type JWTVerifier struct {
	o        JWTOptions
	cache    *jwk.Cache
	verified *tokencheck.Cache[*jwtVerified]

	mu            sync.Mutex
	lastRefresh   time.Time
	refreshFailed bool
}

// asymmetric lists the signature algorithms accepted: never none or HMAC,
// so a token "signed" with the public key as an HMAC secret cannot pass.
var asymmetric = []jwa.SignatureAlgorithm{
	jwa.RS256(), jwa.RS384(), jwa.RS512(), jwa.PS256(), jwa.PS384(), jwa.PS512(),
	jwa.ES256(), jwa.ES384(), jwa.ES512(), jwa.EdDSA(),
}

// NewJWTVerifier starts the JWKS cache (it lives until ctx is done) and waits
// for the first fetch, so that a misconfigured JWKS URL fails at start-up.
func NewJWTVerifier(ctx context.Context, options *JWTOptions) (*JWTVerifier, error) {
	var opts JWTOptions
	if options != nil {
		opts = *options
	}
	if opts.Issuer == "" || opts.JWKSURL == "" || opts.Audience == "" {
		return nil, errors.New("authz: JWT verification needs an issuer, a JWKS URL and an audience")
	}
	switch {
	case opts.ClockSkew == 0:
		opts.ClockSkew = 30 * time.Second
	case opts.ClockSkew < 0:
		opts.ClockSkew = 0
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = 30 * time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.StartupTimeout <= 0 {
		opts.StartupTimeout = 4 * time.Second
	}
	if opts.GroupsClaim == "" {
		opts.GroupsClaim = "groups"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cache, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		return nil, fmt.Errorf("authz: JWKS cache: %w", err)
	}
	// Register waits for the first fetch; bound that wait so that a JWKS
	// that cannot be fetched fails start-up instead of hanging it. (ctx,
	// the cache's lifetime, cannot carry the deadline.)
	rctx, cancel := context.WithTimeout(ctx, opts.StartupTimeout)
	defer cancel()
	if err := cache.Register(rctx, opts.JWKSURL,
		jwk.WithHTTPClient(cacheControlGuard{opts.HTTPClient}),
		jwk.WithMinInterval(opts.RefreshInterval),
		jwk.WithMaxInterval(time.Hour),
	); err != nil {
		return nil, fmt.Errorf("authz: fetch JWKS %s: %w", opts.JWKSURL, err)
	}
	return &JWTVerifier{o: opts, cache: cache, verified: tokencheck.NewCache[*jwtVerified](opts.VerifiedCacheSize)}, nil
}

// Verify implements Verifier.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*auth.TokenInfo, error) {
	if strings.Count(token, ".") != 2 {
		return nil, tokencheck.Invalid("not a JWT")
	}
	var hash [sha256.Size]byte
	if v.verified != nil {
		hash = sha256.Sum256([]byte(token))
		// The cache holds a token until it expires (exp plus ClockSkew):
		// past that, a miss, and the full verification below refuses it.
		e, ok := v.verified.Get(hash, v.o.Now())
		if v.o.CacheLookup != nil {
			v.o.CacheLookup(ok)
		}
		if ok {
			key, err := v.key(ctx, e.kid)
			if err != nil {
				return nil, err
			}
			if key == e.key { // the JWKS still serves the key that verified it
				info := *e.info
				info.Scopes = slices.Clone(info.Scopes)
				info.Extra = tokencheck.CloneExtra(info.Extra)
				return &info, nil
			}
			// The JWKS was fetched again since: verify in full.
		}
	}
	msg, err := jws.Parse([]byte(token))
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, tokencheck.Invalid("malformed JWT")
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg, ok := hdr.Algorithm()
	if !ok || !slices.Contains(asymmetric, alg) {
		return nil, tokencheck.Invalid("signature algorithm %q is not accepted", alg.String())
	}
	if typ, ok := hdr.Type(); ok && !acceptedType(typ) {
		return nil, tokencheck.Invalid("token type %q is not an access token", typ)
	}
	kid, _ := hdr.KeyID()
	key, err := v.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	if keyAlg, ok := key.Algorithm(); ok && keyAlg.String() != alg.String() {
		return nil, tokencheck.Invalid("algorithm %s does not match the key's %s", alg, keyAlg)
	}
	if !compatible(key.KeyType(), alg) {
		return nil, tokencheck.Invalid("algorithm %s does not fit a %s key", alg, key.KeyType())
	}
	tok, err := jwt.Parse([]byte(token),
		jwt.WithKey(alg, key),
		jwt.WithValidate(true),
		jwt.WithIssuer(v.o.Issuer),
		jwt.WithRequiredClaim("exp"),
		jwt.WithAcceptableSkew(v.o.ClockSkew),
		jwt.WithClock(jwt.ClockFunc(v.o.Now)),
	)
	if err != nil {
		return nil, tokencheck.Invalid("%s", tokencheck.JWTReason(err))
	}
	aud, _ := tok.Audience()
	if !slices.ContainsFunc(aud, func(a string) bool { return authz.SameResource(a, v.o.Audience) }) {
		return nil, tokencheck.Invalid("the token was issued for another resource")
	}
	info, err := tokenInfo(tok, v.o.GroupsClaim)
	if err != nil || v.verified == nil {
		return info, err
	}
	// Remembered as verified, a copy: the caller may change what it gets.
	kept := *info
	kept.Scopes = slices.Clone(info.Scopes)
	kept.Extra = tokencheck.CloneExtra(info.Extra)
	v.verified.Set(hash, &jwtVerified{kid: kid, key: key, info: &kept}, info.Expiration.Add(v.o.ClockSkew), v.o.Now())
	return info, nil
}

// key finds the verification key for kid, forcing a rate-limited JWKS
// refresh when the kid is unknown (the authorization server rotated keys).
func (v *JWTVerifier) key(ctx context.Context, kid string) (jwk.Key, error) {
	set, err := v.cache.Lookup(ctx, v.o.JWKSURL)
	if err != nil {
		return nil, fmt.Errorf("%w: JWKS: %v", authz.ErrUnavailable, err)
	}
	if k, ok := pick(set, kid); ok {
		return k, nil
	}
	v.mu.Lock()
	due := v.o.Now().Sub(v.lastRefresh) >= v.o.RefreshInterval
	if due {
		v.lastRefresh = v.o.Now()
	}
	failed := v.refreshFailed
	v.mu.Unlock()
	if !due {
		if failed {
			// The last refresh could not reach the JWKS: the key may well
			// exist. Not a verdict on the token.
			return nil, fmt.Errorf("%w: JWKS unreachable at the last refresh", authz.ErrUnavailable)
		}
		return nil, tokencheck.Invalid("unknown signing key")
	}
	set, err = v.cache.Refresh(ctx, v.o.JWKSURL)
	v.mu.Lock()
	v.refreshFailed = err != nil
	v.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: JWKS refresh: %v", authz.ErrUnavailable, err)
	}
	if k, ok := pick(set, kid); ok {
		return k, nil
	}
	return nil, tokencheck.Invalid("unknown signing key")
}

func pick(set jwk.Set, kid string) (jwk.Key, bool) {
	if kid != "" {
		return set.LookupKeyID(kid)
	}
	if set.Len() == 1 {
		return set.Key(0)
	}
	return nil, false
}

func acceptedType(typ string) bool {
	switch strings.ToLower(typ) {
	case "jwt", "at+jwt", "application/at+jwt":
		return true
	}
	return false
}

func compatible(kty jwa.KeyType, alg jwa.SignatureAlgorithm) bool {
	name := alg.String()
	switch kty {
	case jwa.RSA():
		return strings.HasPrefix(name, "RS") || strings.HasPrefix(name, "PS")
	case jwa.EC():
		return strings.HasPrefix(name, "ES")
	case jwa.OKP():
		return name == "EdDSA"
	}
	return false
}

// tokenInfo extracts identity and scopes: scope (RFC 9068, a string) or scp
// (a list or string, as Entra ID and Okta send it); the groups of
// groupsClaim, and the e-mail address when email_verified is true.
func tokenInfo(tok jwt.Token, groupsClaim string) (*auth.TokenInfo, error) {
	sub, _ := tok.Subject()
	if sub == "" {
		return nil, tokencheck.Invalid("the token has no subject")
	}
	exp, _ := tok.Expiration()
	info := &auth.TokenInfo{UserID: sub, Expiration: exp, Extra: map[string]any{}}
	var scope string
	if tok.Get("scope", &scope) == nil {
		info.Scopes = authz.ParseScope(scope)
	} else {
		var raw any
		if tok.Get("scp", &raw) == nil {
			info.Scopes = scopesOf(raw)
		}
	}
	for _, claim := range []string{"client_id", "azp", "appid"} {
		var cid string
		if tok.Get(claim, &cid) == nil && cid != "" {
			info.Extra["client_id"] = cid
			break
		}
	}
	if jti, ok := tok.JwtID(); ok {
		info.Extra["jti"] = jti
	}
	var groups, email, verified any
	_ = tok.Get(groupsClaim, &groups)
	_ = tok.Get("email", &email)
	_ = tok.Get("email_verified", &verified)
	tokencheck.SetUserClaims(info.Extra, groups, email, verified)
	return info, nil
}

func scopesOf(raw any) []string {
	switch v := raw.(type) {
	case string:
		return authz.ParseScope(v)
	case []any:
		var out []string
		for _, s := range v {
			if str, ok := s.(string); ok && !slices.Contains(out, str) {
				out = append(out, str)
			}
		}
		return out
	case []string:
		return slices.Compact(slices.Clone(v))
	case json.RawMessage:
		var list []string
		if json.Unmarshal(v, &list) == nil {
			return list
		}
	}
	return nil
}

// cacheControlGuard is the JWKS fetch's HTTP client. It drops a
// Cache-Control header that has a directive with an empty value
// ("max-age="): httprc hands the header to github.com/lestrrat-go/httpcc
// v1.0.1, which panics on one, on httprc's own goroutine, taking the whole
// process down. Without the header httprc does what it does with any
// Cache-Control it cannot parse: it refreshes at the minimum interval
// (or as Expires says). A fixed httpcc would make this unnecessary;
// TestJWTVerifierEmptyCacheDirective fails if the guard goes and the
// panic stays.
type cacheControlGuard struct{ c *http.Client }

func (g cacheControlGuard) Do(req *http.Request) (*http.Response, error) {
	res, err := g.c.Do(req)
	if err == nil && emptyDirective(res.Header.Values("Cache-Control")) {
		res.Header.Del("Cache-Control")
	}
	return res, err
}

// emptyDirective reports a Cache-Control directive written name= with
// nothing after the equals sign.
func emptyDirective(values []string) bool {
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			if _, val, ok := strings.Cut(d, "="); ok && strings.TrimSpace(val) == "" {
				return true
			}
		}
	}
	return false
}
