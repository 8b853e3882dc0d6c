package authztest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Issuer and Audience are the test tokens' authorization server and
// resource.
const (
	Issuer   = "https://as.example.com"
	Audience = "https://mcp.example.com/mcp"
)

// Clock is a settable clock. It starts at the real time (to the second)
// because the go-sdk's RequireBearerToken, behind RequireBearer, compares
// TokenInfo.Expiration with the real clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at the current time, to the second.
func NewClock() *Clock { return &Clock{now: time.Now().Truncate(time.Second)} }

// ClockAt returns a Clock at t, for tests that need no real time at all.
func ClockAt(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A SigningKey is a private JWK with its public half, kid and alg set.
type SigningKey struct {
	Alg  jwa.SignatureAlgorithm
	Priv jwk.Key
	Pub  jwk.Key
}

// NewSigningKey wraps raw as a SigningKey with kid and alg.
func NewSigningKey(t testing.TB, kid string, alg jwa.SignatureAlgorithm, raw crypto.Signer) SigningKey {
	t.Helper()
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := priv.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	if err := priv.Set(jwk.AlgorithmKey, alg); err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	return SigningKey{Alg: alg, Priv: priv, Pub: pub}
}

// NewECKey returns a new ES256 SigningKey.
func NewECKey(t testing.TB, kid string) SigningKey {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return NewSigningKey(t, kid, jwa.ES256(), raw)
}

// rsaKeys are generated once: RSA 2048 generation is slow under -race.
var rsaKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return keys, err
		}
		keys[i] = k
	}
	return keys, nil
})

// NewRSAKey returns the i-th of two RSA keys (made once per process) as a
// SigningKey for alg.
func NewRSAKey(t testing.TB, kid string, i int, alg jwa.SignatureAlgorithm) SigningKey {
	t.Helper()
	keys, err := rsaKeys()
	if err != nil {
		t.Fatal(err)
	}
	return NewSigningKey(t, kid, alg, keys[i])
}

// Claims are a token's claims; With returns a copy with changes, where a nil
// value removes the claim.
type Claims map[string]any

// BaseClaims are the claims of a valid access token for Issuer and
// Audience, issued at now.
func BaseClaims(now time.Time) Claims {
	return Claims{
		"iss":       Issuer,
		"sub":       "user-1",
		"aud":       []string{Audience},
		"exp":       now.Add(time.Hour),
		"iat":       now,
		"nbf":       now,
		"scope":     "notes:read notes:write",
		"client_id": "client-1",
		"jti":       "jti-1",
	}
}

func (c Claims) With(kv ...any) Claims {
	out := maps.Clone(c)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// Sign builds the token with jwt.NewBuilder and signs it with jwt.Sign. key
// is a private jwk.Key (its kid goes in the header) or HMAC bytes; hdr adds
// protected headers, typ first among them.
func Sign(t testing.TB, alg jwa.SignatureAlgorithm, key any, typ string, c Claims, hdr map[string]any) string {
	t.Helper()
	b := jwt.NewBuilder()
	for k, v := range c {
		b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	hdrs := jws.NewHeaders()
	if typ != "" {
		if err := hdrs.Set(jws.TypeKey, typ); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range hdr {
		if err := hdrs.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	out, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// SignAT signs an at+jwt with k.
func SignAT(t testing.TB, k SigningKey, c Claims) string {
	t.Helper()
	return Sign(t, k.Alg, k.Priv, "at+jwt", c, nil)
}

// SignRaw signs a payload given as raw JSON, for claim shapes the builder
// does not produce (aud as a single string).
func SignRaw(t testing.TB, k SigningKey, payload string) string {
	t.Helper()
	hdrs := jws.NewHeaders()
	if err := hdrs.Set(jws.TypeKey, "at+jwt"); err != nil {
		t.Fatal(err)
	}
	out, err := jws.Sign([]byte(payload), jws.WithKey(k.Alg, k.Priv, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Unsigned builds an alg "none" token by hand.
func Unsigned(t testing.TB, header map[string]any, c Claims) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]any{}
	for k, v := range c {
		if tm, ok := v.(time.Time); ok {
			v = tm.Unix()
		}
		p[k] = v
	}
	pb, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(pb) + "."
}

// PublicPEM is the public half of k, PEM-encoded.
func PublicPEM(t testing.TB, k SigningKey) []byte {
	t.Helper()
	var raw any
	if err := jwk.Export(k.Pub, &raw); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// The -update flag rewrites the goldens under testdata. A test of the
// importing package may define it too, so it is looked up by
// name instead of held in a package variable: package-level flag.Bool
// calls run before any init, and this one only defines the flag when
// nobody else has.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite testdata/*.golden.json")
	}
}

// updatingGoldens reports whether -update was given.
func updatingGoldens() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

// CheckJSONGolden compares got with testdata/<name>.golden.json as JSON
// values, rewriting the file first under -update.
func CheckJSONGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.json")
	if updatingGoldens() {
		var buf bytes.Buffer
		if err := json.Indent(&buf, got, "", "  "); err != nil {
			t.Fatalf("indent %s: %v", name, err)
		}
		buf.WriteByte('\n')
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("golden %s: %v", path, err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v\n%s", err, got)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}
