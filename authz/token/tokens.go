package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
)

// IssuerOptions configures an Issuer.
type IssuerOptions struct {
	// Issuer is our authorization server's issuer identifier: the public
	// base URL, exactly as advertised in its metadata (RFC 8414 §2); iss
	// must equal it. REQUIRED.
	Issuer string
	// Audience is the canonical MCP URL the tokens are for (RFC 8707); aud
	// is exactly this, and Verify accepts it give or take a trailing slash.
	// REQUIRED.
	Audience string
	// AccessTokenLifetime is how long an access token lives. Default 10
	// minutes: short, because a JWT cannot be recalled once it leaves, and
	// independent of the upstream token's lifetime. Rotate the ring with at
	// least this lifetime.
	AccessTokenLifetime time.Duration
	// ClockSkew tolerated on exp, nbf and iat. Zero means the default,
	// 30s; a negative value means none.
	ClockSkew time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand is the source of jti values; default crypto/rand.Reader. (ECDSA
	// signatures always draw from crypto/rand.)
	Rand io.Reader
	// Revoked, if set, is asked by Verify whether the grant gid or the token
	// jti has been revoked, once everything else about the token has been
	// checked. An error from it makes Verify return ErrUnavailable.
	Revoked func(ctx context.Context, gid, jti string) (bool, error)
	// VerifiedCacheSize bounds how many verified tokens Verify remembers,
	// so that a client's next request with the same token skips the
	// signature check (ECDSA and JSON parsing, the larger part of the
	// cost of an MCP request); expiry, the signing key and Revoked are
	// checked on every request still. Zero means 10 000; negative, none.
	VerifiedCacheSize int
	// CacheLookup, if set, is told of each lookup of a token in the
	// verified-token cache: hit or miss (metrics). It must be cheap and
	// safe for concurrent use.
	CacheLookup func(hit bool)
}

// An Issuer mints our JWT access tokens ([RFC 9068]) and verifies them
// locally, with no network call: the MCP endpoint checks every request, and
// must not pay a round trip for it.
//
// [RFC 9068]: https://www.rfc-editor.org/rfc/rfc9068
type Issuer struct {
	o        IssuerOptions
	ring     *KeyRing
	verified *tokencheck.Cache[*verifiedToken]
}

const (
	// accessTokenType is the typ header of RFC 9068 §2.1.
	accessTokenType = "at+jwt"
	// grantIDClaim is the private claim naming the grant a token came from,
	// so that revoking the grant revokes its access tokens.
	grantIDClaim = "gid"
	// maxAccessTokenLen bounds the tokens Verify parses; ours are under
	// 1 KiB, and under 5 KiB with the most groups and the longest e-mail
	// address (see UserClaims).
	maxAccessTokenLen = 8192
	// MaxGroupsClaimBytes and MaxGroupsClaimNames bound the groups claim of
	// an access token: the groups are kept in order while both hold, the
	// rest dropped.
	MaxGroupsClaimBytes = 2048
	MaxGroupsClaimNames = 64
	// maxEmailLen bounds the email claim (RFC 5321 §4.5.3.1.3's path
	// limit); a longer address is left out.
	maxEmailLen = 254
)

// UserClaims are what an access token says of its user besides the
// subject, for per-item policy: the upstream groups ("groups", bounded
// by MaxGroupsClaimNames and MaxGroupsClaimBytes) and a verified e-mail
// address ("email"; never an unverified one). Zero values are left out
// of the token.
type UserClaims struct {
	Email  string
	Groups []string
}

// BoundGroups keeps groups in order while the claim stays within
// MaxGroupsClaimNames and MaxGroupsClaimBytes: what an access token
// carries of them.
func BoundGroups(groups []string) []string {
	var out []string
	n := 0
	for _, g := range groups {
		if g == "" {
			continue
		}
		if len(out) == MaxGroupsClaimNames || n+len(g) > MaxGroupsClaimBytes {
			break
		}
		n += len(g)
		out = append(out, g)
	}
	return out
}

// NewIssuer returns an Issuer that signs with ring's active key and
// verifies with any key ring publishes. It checks opts (REQUIRED fields
// included: nil opts are refused) and fills in the defaults.
func NewIssuer(ring *KeyRing, options *IssuerOptions) (*Issuer, error) {
	var opts IssuerOptions
	if options != nil {
		opts = *options
	}
	if opts.Issuer == "" || opts.Audience == "" || ring == nil {
		return nil, errors.New("authz: an issuer needs an issuer identifier, an audience and a key ring")
	}
	// RFC 8414 §2: an https URL (http for local development) with no query
	// or fragment.
	if u, err := url.Parse(opts.Issuer); err != nil || u.Host == "" ||
		(u.Scheme != "https" && u.Scheme != "http") || strings.ContainsAny(opts.Issuer, "?#") {
		return nil, fmt.Errorf("authz: issuer %q is not an https URL without query or fragment", opts.Issuer)
	}
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = 10 * time.Minute
	}
	switch {
	case opts.ClockSkew == 0:
		opts.ClockSkew = 30 * time.Second
	case opts.ClockSkew < 0:
		opts.ClockSkew = 0
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	return &Issuer{o: opts, ring: ring, verified: tokencheck.NewCache[*verifiedToken](opts.VerifiedCacheSize)}, nil
}

// MintAccessToken signs an access token for subject, obtained by clientID
// through grant grantID, carrying scopes. The token is an ES256 JWT with
// typ "at+jwt" and the active key's kid, and the claims of RFC 9068 §2.2:
// iss, aud (the MCP resource), sub, client_id, scope (space-separated,
// omitted when empty), jti, iat, nbf and exp, plus gid, the grant. It
// returns the token with its jti and expiry, for the caller to record.
func (i *Issuer) MintAccessToken(subject, clientID string, scopes []string, grantID string) (token, jti string, exp time.Time, err error) {
	return i.MintAccessTokenFor(subject, clientID, scopes, grantID, UserClaims{})
}

// MintAccessTokenFor is MintAccessToken with the user's claims: "groups"
// (a JSON array, bounded as UserClaims says) and "email", each only when
// not empty.
func (i *Issuer) MintAccessTokenFor(subject, clientID string, scopes []string, grantID string, user UserClaims) (token, jti string, exp time.Time, err error) {
	if subject == "" || clientID == "" || grantID == "" {
		return "", "", time.Time{}, errors.New("authz: mint access token: subject, client and grant are required")
	}
	for _, s := range scopes {
		if !authz.ValidScopeToken(s) {
			return "", "", time.Time{}, fmt.Errorf("authz: mint access token: invalid scope %q", s)
		}
	}
	jti, err = randomID(i.o.Rand, 16)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("authz: mint access token: %w", err)
	}
	// NumericDate has whole seconds: truncate so that exp is what the
	// token says.
	now := i.o.Now().Truncate(time.Second)
	exp = now.Add(i.o.AccessTokenLifetime)
	b := jwt.NewBuilder().
		Issuer(i.o.Issuer).
		Audience([]string{i.o.Audience}).
		Subject(subject).
		Claim("client_id", clientID).
		JwtID(jti).
		IssuedAt(now).
		NotBefore(now).
		Expiration(exp).
		Claim(grantIDClaim, grantID)
	if s := authz.ParseScope(strings.Join(scopes, " ")); len(s) > 0 {
		b = b.Claim("scope", strings.Join(s, " "))
	}
	if g := BoundGroups(user.Groups); len(g) > 0 {
		b = b.Claim("groups", g)
	}
	if user.Email != "" && len(user.Email) <= maxEmailLen {
		b = b.Claim("email", user.Email)
	}
	tok, err := b.Build()
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("authz: mint access token: %w", err)
	}
	key := i.ring.signer()
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, accessTokenType); err != nil {
		return "", "", time.Time{}, fmt.Errorf("authz: mint access token: %w", err)
	}
	if err := hdr.Set(jws.KeyIDKey, key.kid); err != nil {
		return "", "", time.Time{}, fmt.Errorf("authz: mint access token: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("authz: sign access token: %w", err)
	}
	return string(signed), jti, exp, nil
}

// Verify checks an access token minted by i, with the discipline of
// JWTVerifier and stricter where only our own tokens can pass: typ must be
// at+jwt, alg ES256, the kid one the ring publishes now, iss exactly ours,
// aud our resource (give or take a trailing slash), exp present and not
// past (with ClockSkew), and sub, client_id, jti and gid present. It then
// asks the Revoked hook, if any. A refused token gives an error wrapping
// ErrInvalidToken whose description is safe to send; a failing hook gives
// ErrUnavailable. Verify has the type of a Verifier.
//
// A token it accepted before (the same string, remembered by its SHA-256;
// see VerifiedCacheSize) is not parsed and its signature not checked
// again: a client sends the same token with every request, and the
// signature check is 150 µs of a request's 300 (`make bench`); the key,
// the expiry and the Revoked hook are checked every time.
func (i *Issuer) Verify(ctx context.Context, token string) (*auth.TokenInfo, error) {
	if len(token) > maxAccessTokenLen {
		return nil, tokencheck.Invalid("the token is too long")
	}
	if strings.Count(token, ".") != 2 {
		return nil, tokencheck.Invalid("not a JWT")
	}
	now := i.o.Now()
	var key [sha256.Size]byte
	if i.verified != nil {
		key = sha256.Sum256([]byte(token))
		v, ok := i.verified.Get(key, now)
		if i.o.CacheLookup != nil {
			i.o.CacheLookup(ok)
		}
		if ok {
			if pub, ok := i.ring.verificationKey(v.kid, now); !ok {
				return nil, tokencheck.Invalid("unknown signing key")
			} else if pub == v.pub || pub.Equal(v.pub) { // the same ring entry, or an equal key
				return i.checkVerified(ctx, v, now)
			}
			// The kid now names another key: verify in full (and fail).
		}
	}
	msg, err := jws.Parse([]byte(token))
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, tokencheck.Invalid("malformed JWT")
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	if alg, ok := hdr.Algorithm(); !ok || alg.String() != jwa.ES256().String() {
		return nil, tokencheck.Invalid("signature algorithm %q is not accepted", alg.String())
	}
	if typ, _ := hdr.Type(); !strings.EqualFold(typ, accessTokenType) && !strings.EqualFold(typ, "application/"+accessTokenType) {
		return nil, tokencheck.Invalid("token type %q is not an access token", typ)
	}
	kid, _ := hdr.KeyID()
	pub, ok := i.ring.verificationKey(kid, now)
	if !ok {
		return nil, tokencheck.Invalid("unknown signing key")
	}
	tok, err := jwt.Parse([]byte(token),
		jwt.WithKey(jwa.ES256(), pub),
		jwt.WithValidate(true),
		jwt.WithIssuer(i.o.Issuer),
		jwt.WithRequiredClaim("exp"),
		jwt.WithAcceptableSkew(i.o.ClockSkew),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
	)
	if err != nil {
		return nil, tokencheck.Invalid("%s", tokencheck.JWTReason(err))
	}
	aud, _ := tok.Audience()
	if !slices.ContainsFunc(aud, func(a string) bool { return authz.SameResource(a, i.o.Audience) }) {
		return nil, tokencheck.Invalid("the token was issued for another resource")
	}
	sub, _ := tok.Subject()
	jti, _ := tok.JwtID()
	exp, _ := tok.Expiration()
	var clientID, gid, scope string
	_ = tok.Get("client_id", &clientID)
	_ = tok.Get(grantIDClaim, &gid)
	if err := tok.Get("scope", &scope); err != nil && tok.Has("scope") {
		return nil, tokencheck.Invalid("the scope claim is not a string")
	}
	if sub == "" || clientID == "" || jti == "" || gid == "" {
		return nil, tokencheck.Invalid("the token lacks a required claim")
	}
	var email string
	groups, ok := stringsClaim(tok, "groups")
	if !ok {
		return nil, tokencheck.Invalid("the groups claim is not an array of strings")
	}
	if tok.Has("email") && tok.Get("email", &email) != nil {
		return nil, tokencheck.Invalid("the email claim is not a string")
	}
	v := &verifiedToken{pub: pub, kid: kid, sub: sub, jti: jti, gid: gid, scopes: authz.ParseScope(scope), exp: exp,
		extra: [3]any{clientID, jti, gid}, groups: groups, email: email}
	if i.verified != nil {
		// Kept until the token expires, as checkVerified decides it.
		i.verified.Set(key, v, exp.Add(i.o.ClockSkew), now)
	}
	return i.checkVerified(ctx, v, now)
}

// checkVerified is what Verify checks on every request, of a token whose
// signature and claims it has verified (and whose key it has looked up):
// that the token has not expired since and that it is not revoked.
func (i *Issuer) checkVerified(ctx context.Context, v *verifiedToken, now time.Time) (*auth.TokenInfo, error) {
	// Expiry as jwt.Parse decides it: expired from exp + ClockSkew on.
	if !now.Before(v.exp.Add(i.o.ClockSkew)) {
		return nil, tokencheck.Invalid("the token has expired")
	}
	if i.o.Revoked != nil {
		revoked, err := i.o.Revoked(ctx, v.gid, v.jti)
		if err != nil {
			return nil, fmt.Errorf("%w: revocation check: %w", authz.ErrUnavailable, err)
		}
		if revoked {
			return nil, tokencheck.Invalid("the token was revoked")
		}
	}
	info := &auth.TokenInfo{
		UserID:     v.sub,
		Scopes:     slices.Clone(v.scopes),
		Expiration: v.exp,
		Extra:      map[string]any{"client_id": v.extra[0], "jti": v.extra[1], "gid": v.extra[2]},
	}
	if len(v.groups) > 0 {
		info.Extra["groups"] = slices.Clone(v.groups)
	}
	if v.email != "" {
		info.Extra["email"] = v.email
	}
	return info, nil
}

// A verifiedToken is what Issuer.Verify learned from a token whose
// signature and claims it checked.
type verifiedToken struct {
	// pub is the key that verified the signature: a later request is
	// answered from the cache only while the ring still maps kid to this
	// very key, so that a kid reused for another key re-verifies.
	pub                *ecdsa.PublicKey
	kid, sub, jti, gid string
	scopes             []string
	exp                time.Time
	// extra is clientID, jti and gid as the values of TokenInfo.Extra,
	// boxed once here rather than on every request.
	extra [3]any
	// groups and email are the user's claims, for TokenInfo.Extra
	// "groups" ([]string) and "email" (string).
	groups []string
	email  string
}

// stringsClaim reads a claim that is an array of strings; a missing
// claim is nil and ok.
func stringsClaim(tok jwt.Token, name string) (out []string, ok bool) {
	if !tok.Has(name) {
		return nil, true
	}
	var raw []any
	if tok.Get(name, &raw) != nil {
		return nil, false
	}
	for _, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// randomID reads n bytes from r and encodes them in base64url.
func randomID(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Ring is the key ring the issuer signs with: the authorization server
// publishes its JWKS.
func (i *Issuer) Ring() *KeyRing { return i.ring }
