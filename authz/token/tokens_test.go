package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/authztest"
	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
	"github.com/remotemcp/remotemcp/authz/resource"
)

// ourIssuer is our own issuer identifier: the public base URL.
const ourIssuer = "https://mcp.example.com"

// issuerFixture is an Issuer on a fake clock, with its ring and active key.
type issuerFixture struct {
	clock *authztest.Clock
	key   *ecdsa.PrivateKey
	ring  *KeyRing
	iss   *Issuer
}

func newTestIssuer(t testing.TB, edit func(*IssuerOptions)) issuerFixture {
	t.Helper()
	f := issuerFixture{clock: authztest.NewClock(), key: mustGenerateKey(t)}
	f.ring = mustKeyRing(t, f.key)
	opts := IssuerOptions{Issuer: ourIssuer, Audience: authztest.Audience, Now: f.clock.Now}
	if edit != nil {
		edit(&opts)
	}
	iss, err := NewIssuer(f.ring, &opts)
	if err != nil {
		t.Fatal(err)
	}
	f.iss = iss
	return f
}

// signer is the active key of f as a private JWK with its kid.
func (f issuerFixture) signer(t testing.TB) authztest.SigningKey {
	t.Helper()
	return authztest.NewSigningKey(t, f.ring.signer().kid, jwa.ES256(), f.key)
}

func (f issuerFixture) mint(t testing.TB, scopes ...string) string {
	t.Helper()
	token, _, _, err := f.iss.MintAccessToken("user-1", "client-1", scopes, "grant-1")
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// ourClaims are the claims MintAccessToken writes, for hand-made tokens.
func ourClaims(now time.Time) authztest.Claims {
	return authztest.Claims{
		"iss":       ourIssuer,
		"sub":       "user-1",
		"aud":       []string{authztest.Audience},
		"exp":       now.Add(10 * time.Minute),
		"iat":       now,
		"nbf":       now,
		"scope":     "notes:read",
		"client_id": "client-1",
		"jti":       "jti-1",
		"gid":       "grant-1",
	}
}

// decodeSegment decodes a base64url JSON segment of a JWT.
func decodeSegment(t testing.TB, seg string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestIssuerMintVerify(t *testing.T) {
	f := newTestIssuer(t, nil)
	now := f.clock.Now()
	token, jti, exp, err := f.iss.MintAccessToken("user-1", "client-1", []string{"notes:read", "notes:write", "notes:read"}, "grant-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(10 * time.Minute); !exp.Equal(want) {
		t.Errorf("exp = %v, want the default lifetime of 10m: %v", exp, want)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(raw) != 16 {
		t.Errorf("jti %q is not 128 random bits in base64url", jti)
	}

	parts := strings.Split(token, ".")
	wantHeader := map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": thumbprint(t, &f.key.PublicKey)}
	if diff := cmp.Diff(wantHeader, decodeSegment(t, parts[0])); diff != "" {
		t.Errorf("protected header (-want +got):\n%s", diff)
	}
	wantClaims := map[string]any{
		"iss":       ourIssuer,
		"aud":       []any{authztest.Audience},
		"sub":       "user-1",
		"client_id": "client-1",
		"scope":     "notes:read notes:write",
		"jti":       jti,
		"iat":       float64(now.Unix()),
		"nbf":       float64(now.Unix()),
		"exp":       float64(exp.Unix()),
		"gid":       "grant-1",
	}
	if diff := cmp.Diff(wantClaims, decodeSegment(t, parts[1])); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}

	info, err := f.iss.Verify(t.Context(), token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := &auth.TokenInfo{
		UserID:     "user-1",
		Scopes:     []string{"notes:read", "notes:write"},
		Expiration: exp,
		Extra:      map[string]any{"client_id": "client-1", "jti": jti, "gid": "grant-1"},
	}
	if diff := cmp.Diff(want, info, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("TokenInfo (-want +got):\n%s", diff)
	}

	// Our tokens also satisfy the external-token verifier's rules.
	rec, seen := issuerThroughBearer(f.iss.Verify, token)
	if rec.Code != http.StatusOK || seen == nil || seen.UserID != "user-1" {
		t.Errorf("through RequireBearer: status %d, TokenInfo %+v", rec.Code, seen)
	}
}

func TestIssuerMintWithoutScopes(t *testing.T) {
	f := newTestIssuer(t, func(o *IssuerOptions) { o.AccessTokenLifetime = time.Minute })
	token, _, exp, err := f.iss.MintAccessToken("user-1", "client-1", nil, "grant-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decodeSegment(t, strings.Split(token, ".")[1])["scope"]; ok {
		t.Error("a token without scopes has a scope claim")
	}
	if want := f.clock.Now().Add(time.Minute); !exp.Equal(want) {
		t.Errorf("exp = %v, want %v", exp, want)
	}
	info, err := f.iss.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Scopes) != 0 {
		t.Errorf("scopes = %q, want none", info.Scopes)
	}
}

func TestIssuerMintRefuses(t *testing.T) {
	f := newTestIssuer(t, nil)
	for _, tt := range []struct {
		name, subject, clientID, grantID string
		scopes                           []string
	}{
		{name: "no subject", clientID: "c", grantID: "g"},
		{name: "no client", subject: "s", grantID: "g"},
		{name: "no grant", subject: "s", clientID: "c"},
		{name: "scope with a space", subject: "s", clientID: "c", grantID: "g", scopes: []string{"a b"}},
		{name: "empty scope", subject: "s", clientID: "c", grantID: "g", scopes: []string{""}},
		{name: "scope with a quote", subject: "s", clientID: "c", grantID: "g", scopes: []string{`a"b`}},
		{name: "scope with a backslash", subject: "s", clientID: "c", grantID: "g", scopes: []string{`a\b`}},
		{name: "non-ASCII scope", subject: "s", clientID: "c", grantID: "g", scopes: []string{"é"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			token, _, _, err := f.iss.MintAccessToken(tt.subject, tt.clientID, tt.scopes, tt.grantID)
			if err == nil || token != "" {
				t.Errorf("MintAccessToken = %q, %v; want an error", token, err)
			}
		})
	}
	t.Run("failing rand", func(t *testing.T) {
		f := newTestIssuer(t, func(o *IssuerOptions) { o.Rand = failingReader{} })
		if _, _, _, err := f.iss.MintAccessToken("s", "c", nil, "g"); err == nil {
			t.Error("minted a token without randomness for its jti")
		}
	})
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestIssuerVerifyRefuses(t *testing.T) {
	var calls int
	f := newTestIssuer(t, func(o *IssuerOptions) {
		o.Revoked = func(context.Context, string, string) (bool, error) { calls++; return false, nil }
	})
	now := f.clock.Now()
	ours := f.signer(t)
	kid := kidOf(t, ours)
	base := ourClaims(now)

	impostor := authztest.NewECKey(t, kid) // another key, our kid
	stranger := authztest.NewECKey(t, "stranger")
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es384 := authztest.NewSigningKey(t, kid, jwa.ES384(), p384)
	noKid, err := jwk.Import(f.key)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := authztest.PublicPEM(t, ours)
	pubJWK, err := json.Marshal(ours.Pub)
	if err != nil {
		t.Fatal(err)
	}
	good := f.mint(t, "notes:read")
	parts := strings.Split(good, ".")
	otherPayload := strings.Split(authztest.SignAT(t, ours, base.With("scope", "admin")), ".")[1]
	// A token from an external authorization server that shares our key
	// would still fail on iss; one from another of our deployments on aud.
	for _, tt := range []struct {
		name  string
		token string
		desc  string // the error_description
	}{
		{name: "unknown kid", token: authztest.SignAT(t, stranger, base), desc: "unknown signing key"},
		{name: "no kid", token: authztest.Sign(t, jwa.ES256(), noKid, "at+jwt", base, nil), desc: "unknown signing key"},
		{name: "signed by another key with our kid", token: authztest.SignAT(t, impostor, base), desc: "the signature does not verify"},
		{name: "attacker key embedded in the jwk header", token: authztest.Sign(t, jwa.ES256(), impostor.Priv, "at+jwt", base, map[string]any{jws.JWKKey: impostor.Pub}), desc: "the signature does not verify"},
		{name: "payload swapped under a valid signature", token: parts[0] + "." + otherPayload + "." + parts[2], desc: "the signature does not verify"},
		{name: "signature removed", token: parts[0] + "." + parts[1] + ".", desc: "malformed JWT"},
		{name: "alg none", token: authztest.Unsigned(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, base), desc: `signature algorithm "none" is not accepted`},
		{name: "alg none without kid", token: authztest.Unsigned(t, map[string]any{"alg": "none"}, base), desc: `signature algorithm "none" is not accepted`},
		{name: "HS256 keyed with the public key PEM", token: authztest.Sign(t, jwa.HS256(), pubPEM, "at+jwt", base, map[string]any{jws.KeyIDKey: kid}), desc: `signature algorithm "HS256" is not accepted`},
		{name: "HS256 keyed with the public JWK JSON", token: authztest.Sign(t, jwa.HS256(), pubJWK, "at+jwt", base, map[string]any{jws.KeyIDKey: kid}), desc: `signature algorithm "HS256" is not accepted`},
		{name: "ES384 under our kid", token: authztest.SignAT(t, es384, base), desc: `signature algorithm "ES384" is not accepted`},
		{name: "wrong aud", token: authztest.SignAT(t, ours, base.With("aud", []string{"https://evil.example.com/mcp"})), desc: "the token was issued for another resource"},
		{name: "aud of the issuer", token: authztest.SignAT(t, ours, base.With("aud", []string{ourIssuer})), desc: "the token was issued for another resource"},
		{name: "aud that extends ours", token: authztest.SignAT(t, ours, base.With("aud", []string{authztest.Audience + "-admin"})), desc: "the token was issued for another resource"},
		{name: "no aud", token: authztest.SignAT(t, ours, base.With("aud", nil)), desc: "the token was issued for another resource"},
		{name: "wrong iss", token: authztest.SignAT(t, ours, base.With("iss", "https://evil.example.com")), desc: "the token was issued by another authorization server"},
		{name: "iss with a trailing slash", token: authztest.SignAT(t, ours, base.With("iss", ourIssuer+"/")), desc: "the token was issued by another authorization server"},
		{name: "no iss", token: authztest.SignAT(t, ours, base.With("iss", nil)), desc: "the token was issued by another authorization server"},
		{name: "expired", token: authztest.SignAT(t, ours, base.With("exp", now.Add(-2*time.Minute), "iat", now.Add(-time.Hour), "nbf", now.Add(-time.Hour))), desc: "the token has expired"},
		{name: "expired just beyond the skew", token: authztest.SignAT(t, ours, base.With("exp", now.Add(-31*time.Second))), desc: "the token has expired"},
		{name: "not yet valid", token: authztest.SignAT(t, ours, base.With("nbf", now.Add(2*time.Minute))), desc: "the token is not valid yet"},
		{name: "issued in the future", token: authztest.SignAT(t, ours, base.With("iat", now.Add(2*time.Minute))), desc: "the token was issued in the future"},
		{name: "no exp", token: authztest.SignAT(t, ours, base.With("exp", nil)), desc: "the token has no expiry"},
		{name: "typ JWT", token: authztest.Sign(t, jwa.ES256(), ours.Priv, "JWT", base, nil), desc: `token type "JWT" is not an access token`},
		{name: "no typ", token: signNoTyp(t, ours, base), desc: `token type "" is not an access token`},
		{name: "typ dpop+jwt", token: authztest.Sign(t, jwa.ES256(), ours.Priv, "dpop+jwt", base, nil), desc: `token type "dpop+jwt" is not an access token`},
		{name: "no sub", token: authztest.SignAT(t, ours, base.With("sub", nil)), desc: "the token lacks a required claim"},
		{name: "empty sub", token: authztest.SignAT(t, ours, base.With("sub", "")), desc: "the token lacks a required claim"},
		{name: "no client_id", token: authztest.SignAT(t, ours, base.With("client_id", nil)), desc: "the token lacks a required claim"},
		{name: "no jti", token: authztest.SignAT(t, ours, base.With("jti", nil)), desc: "the token lacks a required claim"},
		{name: "no gid", token: authztest.SignAT(t, ours, base.With("gid", nil)), desc: "the token lacks a required claim"},
		{name: "gid not a string", token: authztest.SignAT(t, ours, base.With("gid", 7)), desc: "the token lacks a required claim"},
		{name: "scope as a list", token: authztest.SignAT(t, ours, base.With("scope", []string{"admin"})), desc: "the scope claim is not a string"},
		{name: "empty", token: "", desc: "not a JWT"},
		{name: "garbage", token: "garbage", desc: "not a JWT"},
		{name: "three garbage parts", token: "a.b.c", desc: "malformed JWT"},
		{name: "four parts", token: good + ".x", desc: "not a JWT"},
		{name: "too long", token: parts[0] + "." + strings.Repeat("eyJ", 3000) + "." + parts[2], desc: "the token is too long"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info, err := f.iss.Verify(t.Context(), tt.token)
			if !errors.Is(err, authz.ErrInvalidToken) || errors.Is(err, authz.ErrUnavailable) {
				t.Fatalf("Verify = %+v, %v; want an error wrapping ErrInvalidToken only", info, err)
			}
			if info != nil {
				t.Errorf("Verify returned TokenInfo %+v with its error", info)
			}
			if got := tokencheck.Description(err); got != tt.desc {
				t.Errorf("refused because %q, want %q", got, tt.desc)
			}
			if len(tt.token) > 8 && strings.Contains(err.Error(), tt.token) {
				t.Errorf("the error quotes the token: %v", err)
			}
		})
	}
	if calls != 0 {
		t.Errorf("the revocation hook was asked %d times about refused tokens", calls)
	}
}

// signNoTyp signs claims with no typ header, which jwt.Sign would add.
func signNoTyp(t testing.TB, k authztest.SigningKey, c authztest.Claims) string {
	t.Helper()
	p := map[string]any{}
	for name, v := range c {
		if tm, ok := v.(time.Time); ok {
			v = tm.Unix()
		}
		p[name] = v
	}
	payload, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.Sign(payload, jws.WithKey(k.Alg, k.Priv))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decodeSegment(t, strings.Split(string(out), ".")[0])["typ"]; ok {
		t.Fatal("jws.Sign added a typ")
	}
	return string(out)
}

// kidOf returns the kid of a signing key.
func kidOf(t testing.TB, k authztest.SigningKey) string {
	t.Helper()
	kid, ok := k.Priv.KeyID()
	if !ok {
		t.Fatal("no kid")
	}
	return kid
}

func TestIssuerVerifyAccepts(t *testing.T) {
	f := newTestIssuer(t, nil)
	now := f.clock.Now()
	ours := f.signer(t)
	base := ourClaims(now)
	for _, tt := range []struct {
		name  string
		token string
	}{
		{name: "minted", token: f.mint(t, "notes:read")},
		{name: "aud with a trailing slash", token: authztest.SignAT(t, ours, base.With("aud", []string{authztest.Audience + "/"}))},
		{name: "aud among others", token: authztest.SignAT(t, ours, base.With("aud", []string{"https://other.example.com", authztest.Audience}))},
		{name: "aud as a string", token: authztest.SignAT(t, ours, base.With("aud", authztest.Audience))},
		{name: "typ in capitals", token: authztest.Sign(t, jwa.ES256(), ours.Priv, "AT+JWT", base, nil)},
		{name: "typ as a full media type", token: authztest.Sign(t, jwa.ES256(), ours.Priv, "application/at+jwt", base, nil)},
		{name: "expired within the skew", token: authztest.SignAT(t, ours, base.With("exp", now.Add(-29*time.Second)))},
		{name: "nbf within the skew", token: authztest.SignAT(t, ours, base.With("nbf", now.Add(29*time.Second)))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info, err := f.iss.Verify(t.Context(), tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if info.UserID != "user-1" || info.Extra["client_id"] != "client-1" || info.Extra["gid"] != "grant-1" {
				t.Errorf("TokenInfo = %+v", info)
			}
		})
	}
}

func TestIssuerRevocation(t *testing.T) {
	type call struct{ GID, JTI string }
	var (
		mu      sync.Mutex
		calls   []call
		revoked bool
		hookErr error
	)
	f := newTestIssuer(t, func(o *IssuerOptions) {
		o.Revoked = func(_ context.Context, gid, jti string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, call{gid, jti})
			return revoked, hookErr
		}
	})
	token, jti, _, err := f.iss.MintAccessToken("user-1", "client-1", nil, "grant-7")
	if err != nil {
		t.Fatal(err)
	}

	if _, err := f.iss.Verify(t.Context(), token); err != nil {
		t.Fatalf("not revoked: %v", err)
	}
	if diff := cmp.Diff([]call{{"grant-7", jti}}, calls); diff != "" {
		t.Errorf("hook calls (-want +got):\n%s", diff)
	}

	revoked = true
	_, err = f.iss.Verify(t.Context(), token)
	if !errors.Is(err, authz.ErrInvalidToken) || tokencheck.Description(err) != "the token was revoked" {
		t.Errorf("revoked: Verify error = %v, want invalid: the token was revoked", err)
	}

	revoked, hookErr = false, errors.New("store down")
	_, err = f.iss.Verify(t.Context(), token)
	if !errors.Is(err, authz.ErrUnavailable) || errors.Is(err, authz.ErrInvalidToken) {
		t.Errorf("hook error: Verify error = %v, want ErrUnavailable only", err)
	}
	if !errors.Is(err, hookErr) {
		t.Errorf("hook error: Verify error = %v does not wrap the hook's error", err)
	}
	rec, _ := issuerThroughBearer(f.iss.Verify, token)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("hook error through RequireBearer: status %d, want 503", rec.Code)
	}
}

func TestIssuerKeyRotation(t *testing.T) {
	const lifetime = 10 * time.Minute
	f := newTestIssuer(t, func(o *IssuerOptions) { o.AccessTokenLifetime = lifetime })
	old := f.signer(t)
	oldKid := kidOf(t, old)
	oldToken := f.mint(t)
	// A token of the old key that outlives the key's retirement: only a
	// forged or buggy token could, and it must fail when the key goes.
	longLived := authztest.SignAT(t, old, ourClaims(f.clock.Now()).With("exp", f.clock.Now().Add(time.Hour)))

	f.clock.Advance(time.Minute)
	if err := f.ring.Rotate(mustGenerateKey(t), lifetime, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	newToken := f.mint(t)
	if kid := decodeSegment(t, strings.Split(newToken, ".")[0])["kid"]; kid == oldKid {
		t.Fatal("the new token is signed with the retired key")
	}
	for _, token := range []string{oldToken, newToken, longLived} {
		if _, err := f.iss.Verify(t.Context(), token); err != nil {
			t.Errorf("right after rotation: %v", err)
		}
	}

	// The old token expires at 10m (give or take the skew), the old key is
	// dropped after 11m.
	f.clock.Advance(lifetime - 40*time.Second)
	if _, err := f.iss.Verify(t.Context(), oldToken); err != nil {
		t.Errorf("at 10m20s: %v", err)
	}
	if _, err := f.iss.Verify(t.Context(), longLived); err != nil {
		t.Errorf("a valid token of the retired key at 10m20s: %v", err)
	}
	f.clock.Advance(41 * time.Second)
	for _, token := range []string{oldToken, longLived} {
		if _, err := f.iss.Verify(t.Context(), token); tokencheck.Description(err) != "unknown signing key" {
			t.Errorf("after the retired key was dropped: %v, want unknown signing key", err)
		}
	}
	if _, err := f.iss.Verify(t.Context(), newToken); err != nil {
		t.Errorf("token of the active key: %v", err)
	}
}

func TestIssuerPersistedRing(t *testing.T) {
	// A token minted before a restart verifies after the ring is reloaded.
	f := newTestIssuer(t, nil)
	token := f.mint(t, "notes:read")
	data, err := MarshalKeyRing(f.ring)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := UnmarshalKeyRing(data)
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := NewIssuer(ring, &IssuerOptions{Issuer: ourIssuer, Audience: authztest.Audience, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Verify(t.Context(), token); err != nil {
		t.Errorf("after reload: %v", err)
	}
}

func TestNewIssuerRefuses(t *testing.T) {
	ring := mustKeyRing(t, mustGenerateKey(t))
	for _, tt := range []struct {
		name string
		ring *KeyRing
		opts *IssuerOptions
	}{
		{"no issuer", ring, &IssuerOptions{Audience: authztest.Audience}},
		{"no audience", ring, &IssuerOptions{Issuer: ourIssuer}},
		{"no ring", nil, &IssuerOptions{Issuer: ourIssuer, Audience: authztest.Audience}},
		{"no options", ring, nil},
		{"relative issuer", ring, &IssuerOptions{Issuer: "mcp.example.com", Audience: authztest.Audience}},
		{"issuer with a query", ring, &IssuerOptions{Issuer: ourIssuer + "?x=1", Audience: authztest.Audience}},
		{"issuer with an empty query", ring, &IssuerOptions{Issuer: ourIssuer + "?", Audience: authztest.Audience}},
		{"issuer with a fragment", ring, &IssuerOptions{Issuer: ourIssuer + "#x", Audience: authztest.Audience}},
		{"issuer of another scheme", ring, &IssuerOptions{Issuer: "ftp://mcp.example.com", Audience: authztest.Audience}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewIssuer(tt.ring, tt.opts); err == nil {
				t.Error("NewIssuer succeeded")
			}
		})
	}
}

func BenchmarkVerifyAccessToken(b *testing.B) {
	f := newTestIssuer(b, nil)
	token := f.mint(b, "notes:read", "notes:write")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.iss.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIssuerVerifiedCache: a token verified once is answered from memory
// afterwards, with the same TokenInfo, while expiry, the signing key and
// revocation are still decided on every call; a different token string
// (even one character of the signature) is verified in full.
func TestIssuerVerifiedCache(t *testing.T) {
	f := newTestIssuer(t, func(o *IssuerOptions) { o.VerifiedCacheSize = 2 })
	token := f.mint(t, "notes:read")
	first, err := f.iss.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	first.Scopes[0] = "changed by a caller"
	second, err := f.iss.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	want := &auth.TokenInfo{UserID: "user-1", Scopes: []string{"notes:read"}, Expiration: first.Expiration,
		Extra: map[string]any{"client_id": "client-1", "jti": first.Extra["jti"], "gid": "grant-1"}}
	if diff := cmp.Diff(want, second); diff != "" {
		t.Errorf("second Verify (-want +got):\n%s", diff)
	}

	i := len(token) - 10 // inside the signature, away from its padding bits
	repl := "A"
	if token[i] == 'A' {
		repl = "B"
	}
	tampered := token[:i] + repl + token[i+1:]
	if _, err := f.iss.Verify(t.Context(), tampered); !errors.Is(err, authz.ErrInvalidToken) {
		t.Errorf("tampered signature of a cached token: %v, want invalid", err)
	}

	// More tokens than the cache holds: every one still verifies.
	var tokens []string
	for range 5 {
		tokens = append(tokens, f.mint(t))
	}
	for range 2 {
		for _, tok := range tokens {
			if _, err := f.iss.Verify(t.Context(), tok); err != nil {
				t.Fatalf("over the cache size: %v", err)
			}
		}
	}
	if n := f.iss.verified.Len(); n > 2 {
		t.Errorf("the cache holds %d tokens, want at most 2", n)
	}

	f.clock.Advance(10*time.Minute + 30*time.Second) // the lifetime and the default skew
	if _, err := f.iss.Verify(t.Context(), tokens[4]); tokencheck.Description(err) != "the token has expired" {
		t.Errorf("a cached token past its expiry: %v, want the token has expired", err)
	}

	// Revocation is asked on every call, cached or not.
	var revoked bool
	rf := newTestIssuer(t, func(o *IssuerOptions) {
		o.Revoked = func(context.Context, string, string) (bool, error) { return revoked, nil }
	})
	rtok := rf.mint(t)
	for range 2 {
		if _, err := rf.iss.Verify(t.Context(), rtok); err != nil {
			t.Fatal(err)
		}
	}
	revoked = true
	if _, err := rf.iss.Verify(t.Context(), rtok); !errors.Is(err, authz.ErrInvalidToken) {
		t.Errorf("a cached token, revoked since: %v, want invalid", err)
	}

	off := newTestIssuer(t, func(o *IssuerOptions) { o.VerifiedCacheSize = -1 })
	if off.iss.verified != nil {
		t.Error("VerifiedCacheSize -1 keeps a cache")
	}
	if _, err := off.iss.Verify(t.Context(), off.mint(t)); err != nil {
		t.Errorf("without a cache: %v", err)
	}
}

// BenchmarkIssuerVerify is the cost of Verify per request: the first
// verification of a token (signature and claims), and later ones.
func BenchmarkIssuerVerify(b *testing.B) {
	for _, bb := range []struct {
		name string
		size int
	}{{"signature", -1}, {"cached", 0}} {
		b.Run(bb.name, func(b *testing.B) {
			f := newTestIssuer(b, func(o *IssuerOptions) { o.VerifiedCacheSize = bb.size })
			token := f.mint(b, "notes:read")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.iss.Verify(b.Context(), token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// issuerThroughBearer runs token through RequireBearer backed by verify,
// and returns the response and the TokenInfo the next handler saw.
func issuerThroughBearer(verify resource.Verifier, token string) (*httptest.ResponseRecorder, *auth.TokenInfo) {
	var seen *auth.TokenInfo
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = auth.TokenInfoFromContext(r.Context())
	})
	h := resource.RequireBearer(verify, &resource.BearerOptions{ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"})(next)
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, seen
}
