package resource

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/authztest"
	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
)

// jwksServer serves the public keys of a JWK Set and counts its fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int32

	mu     sync.Mutex
	keys   []authztest.SigningKey
	status int // 0: serve the set
}

func newJWKSServer(t testing.TB, keys ...authztest.SigningKey) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, keys := s.status, s.keys
		s.mu.Unlock()
		if status != 0 {
			http.Error(w, "unavailable", status)
			return
		}
		set := jwk.NewSet()
		for _, k := range keys {
			if _, ok := k.Pub.(jwk.ECDSAPublicKey); !ok {
				if _, ok := k.Pub.(jwk.RSAPublicKey); !ok {
					t.Errorf("JWKS would publish a non-public key %T", k.Pub)
				}
			}
			if err := set.AddKey(k.Pub); err != nil {
				t.Error(err)
			}
		}
		// A long max-age keeps httprc's background refresh out of the
		// fetch counts.
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "application/jwk-set+json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...authztest.SigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *jwksServer) setStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

// newTestJWTVerifier starts a verifier on s, with a bounded wait for the
// first fetch; its JWKS cache lives until the test ends.
func newTestJWTVerifier(t testing.TB, s *jwksServer, clock *authztest.Clock) *JWTVerifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	type result struct {
		v   *JWTVerifier
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := NewJWTVerifier(ctx, &JWTOptions{Issuer: authztest.Issuer, JWKSURL: s.URL, Audience: authztest.Audience, Now: clock.Now})
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("NewJWTVerifier: %v", r.err)
		}
		return r.v
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("NewJWTVerifier did not return within 10s")
		return nil
	}
}

// bearerThrough runs token through RequireBearer backed by verify.
func bearerThrough(verify Verifier, token string) (*httptest.ResponseRecorder, *nextRecorder) {
	next := &nextRecorder{}
	h := RequireBearer(verify, &BearerOptions{ResourceMetadataURL: testMetadataURL})(next)
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, next
}

func TestJWTVerifierRefuses(t *testing.T) {
	clock := authztest.NewClock()
	now := clock.Now()
	ec := authztest.NewECKey(t, "ec-1")
	rs := authztest.NewRSAKey(t, "rsa-1", 0, jwa.RS256())
	jwks := newJWKSServer(t, ec, rs)
	v := newTestJWTVerifier(t, jwks, clock)

	base := authztest.BaseClaims(now)
	impostor := authztest.NewECKey(t, "ec-1") // another key, same kid
	attacker := authztest.NewECKey(t, "ec-1") // also publishes itself in the header
	rsaAsEC := authztest.NewRSAKey(t, "ec-1", 0, jwa.RS256())
	rsaPS := authztest.NewRSAKey(t, "rsa-1", 0, jwa.PS256()) // the published key, another algorithm
	ecPEM := authztest.PublicPEM(t, ec)
	rsaPEM := authztest.PublicPEM(t, rs)
	ecJWK, err := json.Marshal(ec.Pub)
	if err != nil {
		t.Fatal(err)
	}
	good := authztest.SignAT(t, ec, base)
	parts := strings.Split(good, ".")
	otherPayload := strings.Split(authztest.SignAT(t, ec, base.With("scope", "admin")), ".")[1]

	for _, tt := range []struct {
		name  string
		token string
		desc  string // the error_description
	}{
		{name: "signed by another key with the same kid", token: authztest.SignAT(t, impostor, base), desc: "the signature does not verify"},
		{name: "attacker key embedded in the jwk header", token: authztest.Sign(t, jwa.ES256(), attacker.Priv, "at+jwt", base, map[string]any{jws.JWKKey: attacker.Pub}), desc: "the signature does not verify"},
		{name: "payload swapped under a valid signature", token: parts[0] + "." + otherPayload + "." + parts[2], desc: "the signature does not verify"},
		{name: "signature removed", token: parts[0] + "." + parts[1] + ".", desc: "malformed JWT"},
		{name: "alg none", token: authztest.Unsigned(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": "ec-1"}, base), desc: `signature algorithm "none" is not accepted`},
		{name: "alg None", token: authztest.Unsigned(t, map[string]any{"alg": "None", "typ": "at+jwt", "kid": "ec-1"}, base), desc: "malformed JWT"},
		{name: "alg none without kid", token: authztest.Unsigned(t, map[string]any{"alg": "none"}, base), desc: `signature algorithm "none" is not accepted`},
		{name: "alg none, no signature part", token: strings.TrimSuffix(authztest.Unsigned(t, map[string]any{"alg": "none"}, base), "."), desc: "not a JWT"},
		{name: "HS256 keyed with the EC public key PEM", token: authztest.Sign(t, jwa.HS256(), ecPEM, "at+jwt", base, map[string]any{jws.KeyIDKey: "ec-1"}), desc: `signature algorithm "HS256" is not accepted`},
		{name: "HS256 keyed with the RSA public key PEM", token: authztest.Sign(t, jwa.HS256(), rsaPEM, "at+jwt", base, map[string]any{jws.KeyIDKey: "rsa-1"}), desc: `signature algorithm "HS256" is not accepted`},
		{name: "HS256 keyed with the public JWK JSON", token: authztest.Sign(t, jwa.HS256(), ecJWK, "at+jwt", base, map[string]any{jws.KeyIDKey: "ec-1"}), desc: `signature algorithm "HS256" is not accepted`},
		{name: "HS512 without kid", token: authztest.Sign(t, jwa.HS512(), rsaPEM, "at+jwt", base, nil), desc: `signature algorithm "HS512" is not accepted`},
		{name: "RS256 token naming the EC key", token: authztest.SignAT(t, rsaAsEC, base), desc: "algorithm RS256 does not match the key's ES256"},
		{name: "PS256 with a key published for RS256", token: authztest.SignAT(t, rsaPS, base), desc: "algorithm PS256 does not match the key's RS256"},
		{name: "wrong aud", token: authztest.SignAT(t, ec, base.With("aud", []string{"https://evil.example.com/mcp"})), desc: "the token was issued for another resource"},
		{name: "aud of another resource on the same host", token: authztest.SignAT(t, ec, base.With("aud", []string{"https://mcp.example.com/other"})), desc: "the token was issued for another resource"},
		{name: "aud that extends ours", token: authztest.SignAT(t, ec, base.With("aud", []string{"https://mcp.example.com/mcp-admin"})), desc: "the token was issued for another resource"},
		{name: "aud below ours", token: authztest.SignAT(t, ec, base.With("aud", []string{"https://mcp.example.com/mcp/sub"})), desc: "the token was issued for another resource"},
		{name: "aud of the host only", token: authztest.SignAT(t, ec, base.With("aud", []string{"https://mcp.example.com"})), desc: "the token was issued for another resource"},
		{name: "aud over http", token: authztest.SignAT(t, ec, base.With("aud", []string{"http://mcp.example.com/mcp"})), desc: "the token was issued for another resource"},
		{name: "aud is the client", token: authztest.SignAT(t, ec, base.With("aud", []string{"client-1"})), desc: "the token was issued for another resource"},
		{name: "no aud", token: authztest.SignAT(t, ec, base.With("aud", nil)), desc: "the token was issued for another resource"},
		{name: "wrong iss", token: authztest.SignAT(t, ec, base.With("iss", "https://evil.example.com")), desc: "the token was issued by another authorization server"},
		{name: "iss with a trailing slash", token: authztest.SignAT(t, ec, base.With("iss", authztest.Issuer+"/")), desc: "the token was issued by another authorization server"},
		{name: "no iss", token: authztest.SignAT(t, ec, base.With("iss", nil)), desc: "the token was issued by another authorization server"},
		{name: "expired", token: authztest.SignAT(t, ec, base.With("exp", now.Add(-2*time.Minute), "iat", now.Add(-time.Hour), "nbf", now.Add(-time.Hour))), desc: "the token has expired"},
		{name: "expired just beyond the skew", token: authztest.SignAT(t, ec, base.With("exp", now.Add(-31*time.Second), "iat", now.Add(-time.Hour), "nbf", now.Add(-time.Hour))), desc: "the token has expired"},
		{name: "not yet valid", token: authztest.SignAT(t, ec, base.With("nbf", now.Add(2*time.Minute))), desc: "the token is not valid yet"},
		{name: "issued in the future", token: authztest.SignAT(t, ec, base.With("iat", now.Add(2*time.Minute))), desc: "the token was issued in the future"},
		{name: "no exp", token: authztest.SignAT(t, ec, base.With("exp", nil)), desc: "the token has no expiry"},
		{name: "no sub", token: authztest.SignAT(t, ec, base.With("sub", nil)), desc: "the token has no subject"},
		{name: "empty sub", token: authztest.SignAT(t, ec, base.With("sub", "")), desc: "the token has no subject"},
		{name: "unknown kid", token: authztest.SignAT(t, authztest.NewECKey(t, "ec-unknown"), base), desc: "unknown signing key"},
		{name: "typ JWT+id", token: authztest.Sign(t, jwa.ES256(), ec.Priv, "JWT+id", base, nil), desc: `token type "JWT+id" is not an access token`},
		{name: "typ id+jwt", token: authztest.Sign(t, jwa.ES256(), ec.Priv, "id+jwt", base, nil), desc: `token type "id+jwt" is not an access token`},
		{name: "typ logout+jwt", token: authztest.Sign(t, jwa.ES256(), ec.Priv, "logout+jwt", base, nil), desc: `token type "logout+jwt" is not an access token`},
		{name: "typ secevent+jwt", token: authztest.Sign(t, jwa.ES256(), ec.Priv, "secevent+jwt", base, nil), desc: `token type "secevent+jwt" is not an access token`},
		{name: "typ dpop+jwt", token: authztest.Sign(t, jwa.ES256(), ec.Priv, "dpop+jwt", base, nil), desc: `token type "dpop+jwt" is not an access token`},
		{name: "empty", token: "", desc: "not a JWT"},
		{name: "garbage", token: "garbage", desc: "not a JWT"},
		{name: "three garbage parts", token: "a.b.c", desc: "malformed JWT"},
		{name: "dots only", token: "..", desc: "malformed JWT"},
		{name: "four parts", token: good + ".x", desc: "not a JWT"},
		{name: "header only", token: parts[0] + "..", desc: "malformed JWT"},
		{name: "JSON header, garbage payload", token: parts[0] + ".!!!." + parts[2], desc: "malformed JWT"},
		{name: "long noise", token: strings.Repeat("eyJ", 3000) + ".eyJ.sig", desc: "malformed JWT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info, err := v.Verify(t.Context(), tt.token)
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
			if _, err := bearerToken([]string{"Bearer " + tt.token}); err != nil {
				return // not something a client can send as a bearer token
			}
			rec, next := bearerThrough(v.Verify, tt.token)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("RequireBearer status = %d, want 401", rec.Code)
			}
			checkChallenge(t, rec.Header().Get("WWW-Authenticate"), map[string]string{
				"resource_metadata": testMetadataURL,
				"error":             "invalid_token",
				"error_description": tt.desc,
			})
			if next.calls.Load() != 0 {
				t.Error("the next handler ran")
			}
			if strings.Contains(rec.Body.String(), tt.token) {
				t.Errorf("the body quotes the token: %q", rec.Body)
			}
		})
	}
}

func TestJWTVerifierAccepts(t *testing.T) {
	clock := authztest.NewClock()
	now := clock.Now()
	ec := authztest.NewECKey(t, "ec-1")
	rs := authztest.NewRSAKey(t, "rsa-1", 1, jwa.RS256())
	jwks := newJWKSServer(t, ec, rs)
	v := newTestJWTVerifier(t, jwks, clock)

	base := authztest.BaseClaims(now)
	want := func(scopes []string, extra map[string]any, exp time.Time) *auth.TokenInfo {
		return &auth.TokenInfo{UserID: "user-1", Scopes: scopes, Expiration: exp, Extra: extra}
	}
	rw := []string{"notes:read", "notes:write"}
	std := map[string]any{"client_id": "client-1", "jti": "jti-1"}
	for _, tt := range []struct {
		name  string
		token string
		want  *auth.TokenInfo
	}{
		{name: "ES256 at+jwt", token: authztest.SignAT(t, ec, base), want: want(rw, std, now.Add(time.Hour))},
		{name: "typ application/at+jwt", token: authztest.Sign(t, jwa.ES256(), ec.Priv, "application/at+jwt", base, nil), want: want(rw, std, now.Add(time.Hour))},
		{name: "typ JWT, as most IdPs send", token: authztest.Sign(t, jwa.ES256(), ec.Priv, "JWT", base, nil), want: want(rw, std, now.Add(time.Hour))},
		{name: "RS256", token: authztest.SignAT(t, rs, base), want: want(rw, std, now.Add(time.Hour))},
		{name: "scp as a JSON array", token: authztest.SignAT(t, ec, base.With("scope", nil, "scp", []string{"notes:read", "notes:write"})), want: want(rw, std, now.Add(time.Hour))},
		{name: "scp as a string", token: authztest.SignAT(t, ec, base.With("scope", nil, "scp", "notes:read")), want: want([]string{"notes:read"}, std, now.Add(time.Hour))},
		{name: "no scope", token: authztest.SignAT(t, ec, base.With("scope", nil)), want: want(nil, std, now.Add(time.Hour))},
		{name: "duplicate scopes", token: authztest.SignAT(t, ec, base.With("scope", "notes:read  notes:read")), want: want([]string{"notes:read"}, std, now.Add(time.Hour))},
		{name: "aud with a trailing slash", token: authztest.SignAT(t, ec, base.With("aud", []string{authztest.Audience + "/"})), want: want(rw, std, now.Add(time.Hour))},
		{name: "aud among others", token: authztest.SignAT(t, ec, base.With("aud", []string{"https://api.example.com", authztest.Audience})), want: want(rw, std, now.Add(time.Hour))},
		{
			name: "aud as a single string",
			token: authztest.SignRaw(t, ec, `{"iss":"`+authztest.Issuer+`","sub":"user-1","aud":"`+authztest.Audience+`","exp":`+
				strconv.FormatInt(now.Add(time.Hour).Unix(), 10)+`,"client_id":"client-1"}`),
			want: want(nil, map[string]any{"client_id": "client-1"}, now.Add(time.Hour)),
		},
		{name: "client_id from azp", token: authztest.SignAT(t, ec, base.With("client_id", nil, "azp", "client-2")), want: want(rw, map[string]any{"client_id": "client-2", "jti": "jti-1"}, now.Add(time.Hour))},
		{name: "client_id wins over azp", token: authztest.SignAT(t, ec, base.With("azp", "client-2")), want: want(rw, std, now.Add(time.Hour))},
		{name: "no client_id, no jti", token: authztest.SignAT(t, ec, base.With("client_id", nil, "jti", nil)), want: want(rw, map[string]any{}, now.Add(time.Hour))},
		{name: "expired within the skew", token: authztest.SignAT(t, ec, base.With("exp", now.Add(-10*time.Second), "iat", now.Add(-time.Hour), "nbf", now.Add(-time.Hour))), want: want(rw, std, now.Add(-10*time.Second))},
		{name: "nbf within the skew", token: authztest.SignAT(t, ec, base.With("nbf", now.Add(10*time.Second))), want: want(rw, std, now.Add(time.Hour))},
		{name: "iat within the skew", token: authztest.SignAT(t, ec, base.With("iat", now.Add(10*time.Second))), want: want(rw, std, now.Add(time.Hour))},
		{name: "no iat, no nbf", token: authztest.SignAT(t, ec, base.With("iat", nil, "nbf", nil)), want: want(rw, std, now.Add(time.Hour))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("TokenInfo (-want +got):\n%s", diff)
			}
			rec, next := bearerThrough(v.Verify, tt.token)
			if rec.Code != http.StatusOK || next.calls.Load() != 1 {
				t.Fatalf("RequireBearer status = %d, next ran %d times; want 200 and 1 (body %q)", rec.Code, next.calls.Load(), rec.Body)
			}
			if diff := cmp.Diff(tt.want, next.info); diff != "" {
				t.Errorf("auth.TokenInfoFromContext (-want +got):\n%s", diff)
			}
		})
	}
	if n := jwks.fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times for known keys, want 1 (at start-up)", n)
	}
}

func TestNewJWTVerifierOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts JWTOptions
	}{
		{name: "no issuer", opts: JWTOptions{JWKSURL: "https://as.example.com/jwks", Audience: authztest.Audience}},
		{name: "no JWKS URL", opts: JWTOptions{Issuer: authztest.Issuer, Audience: authztest.Audience}},
		{name: "no audience", opts: JWTOptions{Issuer: authztest.Issuer, JWKSURL: "https://as.example.com/jwks"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := NewJWTVerifier(t.Context(), &tt.opts); err == nil {
				t.Errorf("NewJWTVerifier(%+v) = %v, nil; want an error", tt.opts, v)
			}
		})
	}
}

// TestNewJWTVerifierJWKSDownAtStartUp: the first fetch failing must fail
// start-up (as NewJWTVerifier's doc says), not block.
func TestNewJWTVerifierJWKSDownAtStartUp(t *testing.T) {
	for _, tt := range []struct {
		name   string
		closed bool
	}{
		{name: "503"},
		{name: "connection refused", closed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newJWKSServer(t)
			s.setStatus(http.StatusServiceUnavailable)
			if tt.closed {
				s.Close()
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := NewJWTVerifier(ctx, &JWTOptions{Issuer: authztest.Issuer, JWKSURL: s.URL, Audience: authztest.Audience})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Error("NewJWTVerifier succeeded without a JWKS")
				}
			case <-time.After(5 * time.Second):
				t.Error("NewJWTVerifier still blocked after 5s with the JWKS down")
			}
		})
	}
}

func TestJWTVerifierUnknownKidRateLimit(t *testing.T) {
	clock := authztest.NewClock()
	ec := authztest.NewECKey(t, "ec-1")
	jwks := newJWKSServer(t, ec)
	v := newTestJWTVerifier(t, jwks, clock)
	if n := jwks.fetches.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times at start-up, want 1", n)
	}
	ghost := func(kid string) string {
		return authztest.SignAT(t, authztest.NewECKey(t, kid), authztest.BaseClaims(clock.Now()))
	}
	refuse := func(token string) {
		t.Helper()
		if _, err := v.Verify(t.Context(), token); !errors.Is(err, authz.ErrInvalidToken) {
			t.Fatalf("Verify(unknown kid) = %v, want ErrInvalidToken", err)
		}
	}
	tokens := []string{ghost("ghost-1"), ghost("ghost-2"), ghost("ghost-3")}

	refuse(tokens[0])
	if n := jwks.fetches.Load(); n != 2 {
		t.Fatalf("after an unknown kid, JWKS fetched %d times, want 2 (one forced refresh)", n)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { refuse(tokens[i%len(tokens)]) })
	}
	wg.Wait()
	clock.Advance(29 * time.Second)
	refuse(tokens[1])
	if n := jwks.fetches.Load(); n != 2 {
		t.Fatalf("within RefreshInterval, JWKS fetched %d times, want still 2", n)
	}
	clock.Advance(time.Second)
	refuse(tokens[2])
	if n := jwks.fetches.Load(); n != 3 {
		t.Fatalf("after RefreshInterval, JWKS fetched %d times, want 3", n)
	}
	// A known kid never causes a fetch.
	if _, err := v.Verify(t.Context(), authztest.SignAT(t, ec, authztest.BaseClaims(clock.Now()))); err != nil {
		t.Fatalf("Verify(known kid): %v", err)
	}
	if n := jwks.fetches.Load(); n != 3 {
		t.Errorf("a known kid caused a fetch: %d fetches, want 3", n)
	}
}

func TestJWTVerifierKeyRotation(t *testing.T) {
	clock := authztest.NewClock()
	old := authztest.NewECKey(t, "2025-01")
	jwks := newJWKSServer(t, old)
	v := newTestJWTVerifier(t, jwks, clock)

	// The authorization server rotates: the new key is published and signs
	// the next tokens.
	fresh := authztest.NewECKey(t, "2025-02")
	jwks.setKeys(old, fresh)
	got, err := v.Verify(t.Context(), authztest.SignAT(t, fresh, authztest.BaseClaims(clock.Now())))
	if err != nil {
		t.Fatalf("Verify(token with the new kid): %v", err)
	}
	if got.UserID != "user-1" {
		t.Errorf("UserID = %q, want user-1", got.UserID)
	}
	if n := jwks.fetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (start-up and one forced refresh)", n)
	}
	if _, err := v.Verify(t.Context(), authztest.SignAT(t, old, authztest.BaseClaims(clock.Now()))); err != nil {
		t.Errorf("Verify(token with the old kid, still published): %v", err)
	}

	// A second rotation right after a forced refresh waits for the
	// rate limit, then is picked up.
	newer := authztest.NewECKey(t, "2025-03")
	jwks.setKeys(fresh, newer)
	token := authztest.SignAT(t, newer, authztest.BaseClaims(clock.Now()))
	if _, err := v.Verify(t.Context(), token); !errors.Is(err, authz.ErrInvalidToken) {
		t.Fatalf("Verify(newer kid within RefreshInterval) = %v, want ErrInvalidToken (rate-limited)", err)
	}
	clock.Advance(30 * time.Second)
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatalf("Verify(newer kid after RefreshInterval): %v", err)
	}
	if n := jwks.fetches.Load(); n != 3 {
		t.Errorf("JWKS fetched %d times, want 3", n)
	}
}

func TestJWTVerifierJWKSDown(t *testing.T) {
	for _, tt := range []struct {
		name   string
		closed bool
	}{
		{name: "JWKS answers 503"},
		{name: "JWKS unreachable", closed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := authztest.NewClock()
			ec := authztest.NewECKey(t, "ec-1")
			jwks := newJWKSServer(t, ec)
			v := newTestJWTVerifier(t, jwks, clock)
			if tt.closed {
				jwks.Close()
			} else {
				jwks.setStatus(http.StatusServiceUnavailable)
			}

			// Known keys keep working from the cache.
			if _, err := v.Verify(t.Context(), authztest.SignAT(t, ec, authztest.BaseClaims(clock.Now()))); err != nil {
				t.Errorf("Verify(known kid) with the JWKS down: %v", err)
			}

			unknown := authztest.SignAT(t, authztest.NewECKey(t, "ec-2"), authztest.BaseClaims(clock.Now()))
			_, err := v.Verify(t.Context(), unknown)
			if !errors.Is(err, authz.ErrUnavailable) || errors.Is(err, authz.ErrInvalidToken) {
				t.Fatalf("Verify(unknown kid) with the JWKS down = %v, want ErrUnavailable only", err)
			}

			clock.Advance(30 * time.Second) // past the refresh rate limit
			rec, next := bearerThrough(v.Verify, unknown)
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("RequireBearer status = %d, want 503 (body %q)", rec.Code, rec.Body)
			}
			if n, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || n <= 0 {
				t.Errorf("Retry-After = %q, want a positive number of seconds", rec.Header().Get("Retry-After"))
			}
			if www := rec.Header().Get("WWW-Authenticate"); www != "" {
				t.Errorf("WWW-Authenticate = %q on a 503, want none", www)
			}
			if next.calls.Load() != 0 {
				t.Error("the next handler ran")
			}
			if strings.Contains(rec.Body.String(), unknown) {
				t.Error("the body quotes the token")
			}
		})
	}
}

// TestJWTVerifierJWKSDownWithinRefreshInterval: while the JWKS cannot be
// fetched, a token signed by a key we could not load is not known to be
// invalid; it must keep getting ErrUnavailable (503), not invalid_token
// (401, which sends the client to re-authorize and come back with a token
// signed by the same new key), for the whole rate-limit window.
func TestJWTVerifierJWKSDownWithinRefreshInterval(t *testing.T) {
	clock := authztest.NewClock()
	jwks := newJWKSServer(t, authztest.NewECKey(t, "ec-1"))
	v := newTestJWTVerifier(t, jwks, clock)
	jwks.setStatus(http.StatusServiceUnavailable)
	token := authztest.SignAT(t, authztest.NewECKey(t, "ec-2"), authztest.BaseClaims(clock.Now()))
	for i := range 3 {
		if _, err := v.Verify(t.Context(), token); !errors.Is(err, authz.ErrUnavailable) || errors.Is(err, authz.ErrInvalidToken) {
			t.Errorf("attempt %d: Verify(unknown kid) with the JWKS down = %v, want ErrUnavailable only", i+1, err)
		}
		clock.Advance(time.Second)
	}
}

// TestJWTVerifierVerifiedCache: a token verified once is answered from
// memory afterwards (far fewer allocations than a full verification),
// with a TokenInfo the caller may change; it is refused once expired, and
// once the JWKS no longer serves the key that verified it.
func TestJWTVerifierVerifiedCache(t *testing.T) {
	clock := authztest.NewClock()
	old := authztest.NewECKey(t, "2025-01")
	jwks := newJWKSServer(t, old)
	v := newTestJWTVerifier(t, jwks, clock)
	off := newTestJWTVerifier(t, jwks, clock)
	off.verified = nil
	token := authztest.SignAT(t, old, authztest.BaseClaims(clock.Now()))

	first, err := v.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	if n := v.verified.Len(); n != 1 {
		t.Fatalf("after one Verify the cache holds %d tokens, want 1", n)
	}
	first.Scopes = append(first.Scopes[:0], "changed by a caller")
	first.Extra["jti"] = "changed by a caller"
	second, err := v.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	want, err := off.Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, second); diff != "" {
		t.Errorf("cached Verify (-full +cached):\n%s", diff)
	}
	cached := testing.AllocsPerRun(20, func() { v.Verify(t.Context(), token) })
	full := testing.AllocsPerRun(20, func() { off.Verify(t.Context(), token) })
	if cached*2 > full {
		t.Errorf("a cached Verify allocates %.0f times, a full one %.0f: the cache is not used", cached, full)
	}

	// The authorization server drops the key; the verifier learns of it
	// at its next refresh (forced here by a token with a new kid).
	fresh := authztest.NewECKey(t, "2025-02")
	jwks.setKeys(fresh)
	clock.Advance(30 * time.Second)
	if _, err := v.Verify(t.Context(), authztest.SignAT(t, fresh, authztest.BaseClaims(clock.Now()))); err != nil {
		t.Fatalf("Verify(token with the new kid): %v", err)
	}
	if _, err := v.Verify(t.Context(), token); !errors.Is(err, authz.ErrInvalidToken) {
		t.Errorf("a cached token whose key left the JWKS: %v, want invalid", err)
	}

	freshToken := authztest.SignAT(t, fresh, authztest.BaseClaims(clock.Now()))
	if _, err := v.Verify(t.Context(), freshToken); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour + time.Minute) // the lifetime and the default skew
	if _, err := v.Verify(t.Context(), freshToken); tokencheck.Description(err) != "the token has expired" {
		t.Errorf("a cached token past its expiry: %v, want the token has expired", err)
	}
}

// TestJWTVerifierEmptyCacheDirective: a JWKS answered with
// "Cache-Control: max-age=" is used, and does not crash the process
// (httpcc, behind httprc, panics on that header).
func TestJWTVerifierEmptyCacheDirective(t *testing.T) {
	key := authztest.NewECKey(t, "k1")
	set := jwk.NewSet()
	if err := set.AddKey(key.Pub); err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=")
		w.Header().Set("Content-Type", "application/jwk-set+json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	clock := authztest.NewClock()
	v, err := NewJWTVerifier(t.Context(), &JWTOptions{Issuer: authztest.Issuer, JWKSURL: s.URL, Audience: authztest.Audience, Now: clock.Now})
	if err != nil {
		t.Fatalf("NewJWTVerifier: %v", err)
	}
	token := authztest.SignAT(t, key, authztest.BaseClaims(clock.Now()))
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestEmptyDirective(t *testing.T) {
	for _, tt := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{"max-age=60"}, false},
		{[]string{"no-store"}, false},
		{[]string{"max-age="}, true},
		{[]string{"public", "max-age= "}, true},
		{[]string{`private="a", s-maxage=`}, true},
	} {
		if got := emptyDirective(tt.values); got != tt.want {
			t.Errorf("emptyDirective(%q) = %v, want %v", tt.values, got, tt.want)
		}
	}
}
