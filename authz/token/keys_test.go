package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

func mustGenerateKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustKeyRing(t testing.TB, active *ecdsa.PrivateKey, retired ...RetiredKey) *KeyRing {
	t.Helper()
	r, err := NewKeyRing(active, retired...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// thumbprint computes the RFC 7638 §3 thumbprint of an EC public key by
// hand: SHA-256 of the required members in lexicographic order.
func thumbprint(t testing.TB, k *ecdsa.PublicKey) string {
	t.Helper()
	raw, err := k.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	members := `{"crv":"P-256","kty":"EC","x":"` + enc(raw[1:33]) + `","y":"` + enc(raw[33:]) + `"}`
	sum := sha256.Sum256([]byte(members))
	return enc(sum[:])
}

// jwksKids lists the kids of ring.JWKS(now), in order.
func jwksKids(t testing.TB, ring *KeyRing, now time.Time) []string {
	t.Helper()
	set := ring.JWKS(now)
	var kids []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kid, _ := k.KeyID()
		kids = append(kids, kid)
	}
	return kids
}

func TestKeysKidIsThumbprint(t *testing.T) {
	k := mustGenerateKey(t)
	ring := mustKeyRing(t, k)
	if diff := cmp.Diff([]string{thumbprint(t, &k.PublicKey)}, jwksKids(t, ring, time.Now())); diff != "" {
		t.Errorf("kids (-want +got):\n%s", diff)
	}
}

func TestKeysRotation(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k1, k2, k3 := mustGenerateKey(t), mustGenerateKey(t), mustGenerateKey(t)
	kid1, kid2, kid3 := thumbprint(t, &k1.PublicKey), thumbprint(t, &k2.PublicKey), thumbprint(t, &k3.PublicKey)
	ring := mustKeyRing(t, k1)

	if err := ring.Rotate(k2, 10*time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		at   time.Time
		want []string
	}{
		{"at rotation", t0, []string{kid2, kid1}},
		{"while old tokens live", t0.Add(5 * time.Minute), []string{kid2, kid1}},
		{"when the last old token expires", t0.Add(10 * time.Minute), []string{kid2, kid1}},
		{"after", t0.Add(10*time.Minute + time.Second), []string{kid2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, jwksKids(t, ring, tt.at)); diff != "" {
				t.Errorf("JWKS kids (-want +got):\n%s", diff)
			}
			_, ok := ring.verificationKey(kid1, tt.at)
			if want := slices.Contains(tt.want, kid1); ok != want {
				t.Errorf("verificationKey(old kid) found = %v, want %v", ok, want)
			}
		})
	}
	if got := ring.signer().kid; got != kid2 {
		t.Errorf("signing kid = %s, want %s", got, kid2)
	}

	// A second rotation after the first retiree expired drops it from the
	// ring, not just from the JWKS.
	if err := ring.Rotate(k3, 10*time.Minute, t0.Add(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{kid3, kid2}, jwksKids(t, ring, t0.Add(20*time.Minute))); diff != "" {
		t.Errorf("JWKS kids after a second rotation (-want +got):\n%s", diff)
	}
	if len(ring.retired) != 1 {
		t.Errorf("the ring keeps %d retired keys, want 1", len(ring.retired))
	}
	if ring.retired[0].priv != nil {
		t.Error("a retired key kept its private half")
	}
}

func TestKeysRotateRefuses(t *testing.T) {
	k1, k2 := mustGenerateKey(t), mustGenerateKey(t)
	now := time.Now()
	ring := mustKeyRing(t, k1)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		key      *ecdsa.PrivateKey
		lifetime time.Duration
	}{
		{"the active key again", k1, time.Minute},
		{"zero lifetime", k2, 0},
		{"P-384", p384, time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := ring.Rotate(tt.key, tt.lifetime, now); err == nil {
				t.Error("Rotate succeeded")
			}
			if got := ring.signer().kid; got != thumbprint(t, &k1.PublicKey) {
				t.Error("a refused rotation changed the active key")
			}
		})
	}
	if err := ring.Rotate(k2, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if err := ring.Rotate(k1, time.Minute, now); err == nil {
		t.Error("Rotate re-activated a retired key")
	}
}

func TestKeysNewKeyRingRefuses(t *testing.T) {
	k1, k2 := mustGenerateKey(t), mustGenerateKey(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	for _, tt := range []struct {
		name    string
		active  *ecdsa.PrivateKey
		retired []RetiredKey
		want    string // in the error
	}{
		{"P-384 active key", p384, nil, "must be ECDSA P-256"},
		{"zero key", &ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: elliptic.P256()}}, nil, "malformed ECDSA private key"},
		{"P-384 retired key", k1, []RetiredKey{{Key: &p384.PublicKey, NotAfter: later}}, "must be ECDSA P-256"},
		{"nil retired key", k1, []RetiredKey{{NotAfter: later}}, "must be ECDSA P-256"},
		{"retired key without NotAfter", k1, []RetiredKey{{Key: &k2.PublicKey}}, "needs its NotAfter"},
		{"retired key that is the active key", k1, []RetiredKey{{Key: &k1.PublicKey, NotAfter: later}}, "in the ring twice"},
		{"a retired key twice", k1, []RetiredKey{{Key: &k2.PublicKey, NotAfter: later}, {Key: &k2.PublicKey, NotAfter: later}}, "in the ring twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewKeyRing(tt.active, tt.retired...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewKeyRing error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("nil active key", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil || !strings.HasPrefix(r.(string), "authz: ") {
				t.Errorf("panic = %v, want one prefixed with authz:", r)
			}
		}()
		NewKeyRing(nil)
	})
}

func TestKeysJWKSNeverPrivate(t *testing.T) {
	now := time.Now()
	k1, k2 := mustGenerateKey(t), mustGenerateKey(t)
	ring := mustKeyRing(t, k1, RetiredKey{Key: &k2.PublicKey, NotAfter: now.Add(time.Minute)})
	// The key Rotate retires was held as a private key: it must not leak.
	if err := ring.Rotate(mustGenerateKey(t), time.Minute, now); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(ring.JWKS(now))
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 3 {
		t.Fatalf("JWKS has %d keys, want 3: %s", len(set.Keys), body)
	}
	for _, k := range set.Keys {
		kid, _ := k["kid"].(string)
		if kid == "" {
			t.Errorf("key without kid: %v", k)
		}
		got := map[string]any{"kty": k["kty"], "crv": k["crv"], "alg": k["alg"], "use": k["use"]}
		want := map[string]any{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("key %s (-want +got):\n%s", kid, diff)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("key %s publishes the private member %q", kid, private)
			}
		}
	}
}

func TestKeysJWKSIsACopy(t *testing.T) {
	now := time.Now()
	ring := mustKeyRing(t, mustGenerateKey(t))
	before, err := json.Marshal(ring.JWKS(now))
	if err != nil {
		t.Fatal(err)
	}
	set := ring.JWKS(now)
	k, _ := set.Key(0)
	if err := k.Set(jwk.KeyIDKey, "changed"); err != nil {
		t.Fatal(err)
	}
	after, err := json.Marshal(ring.JWKS(now))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("changing a returned set changed the ring's JWKS:\n%s\n%s", before, after)
	}
}

func TestKeysJWKSHandler(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k1, k2 := mustGenerateKey(t), mustGenerateKey(t)
	ring := mustKeyRing(t, k1)
	if err := ring.Rotate(k2, 10*time.Minute, now); err != nil {
		t.Fatal(err)
	}
	clock := now
	h := JWKSHandler(ring, func() time.Time { return clock })

	get := func(method string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/jwks", nil))
		return rec
	}
	rec := get(http.MethodGet)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	wantHeader := map[string]string{"Content-Type": "application/json", "Cache-Control": "public, max-age=300"}
	gotHeader := map[string]string{"Content-Type": rec.Header().Get("Content-Type"), "Cache-Control": rec.Header().Get("Cache-Control")}
	if diff := cmp.Diff(wantHeader, gotHeader); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	set, err := jwk.Parse(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("parse the served JWKS: %v", err)
	}
	if set.Len() != 2 {
		t.Errorf("served %d keys, want 2", set.Len())
	}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if priv, _ := jwk.IsPrivateKey(k); priv {
			t.Error("served a private key")
		}
	}

	clock = now.Add(11 * time.Minute)
	set, err = jwk.Parse(get(http.MethodGet).Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set.LookupKeyID(thumbprint(t, &k1.PublicKey)); ok || set.Len() != 1 {
		t.Errorf("after the retiree expired: %d keys, old kid still served: %v", set.Len(), ok)
	}

	if rec := get(http.MethodPost); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestKeysMarshalRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k1, k2, k3 := mustGenerateKey(t), mustGenerateKey(t), mustGenerateKey(t)
	ring := mustKeyRing(t, k1, RetiredKey{Key: &k3.PublicKey, NotAfter: now.Add(-time.Minute)})
	if err := ring.Rotate(k2, 10*time.Minute, now); err != nil {
		t.Fatal(err)
	}
	data, err := MarshalKeyRing(ring)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalKeyRing(data)
	if err != nil {
		t.Fatalf("UnmarshalKeyRing: %v\n%s", err, data)
	}
	again, err := MarshalKeyRing(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jsonValue(t, data), jsonValue(t, again)); diff != "" {
		t.Errorf("marshal → unmarshal → marshal (-first +second):\n%s", diff)
	}
	if !got.signer().priv.Equal(k2) {
		t.Error("the decoded ring signs with another key")
	}
	for _, at := range []time.Time{now, now.Add(10 * time.Minute), now.Add(11 * time.Minute)} {
		if diff := cmp.Diff(jwksKids(t, ring, at), jwksKids(t, got, at)); diff != "" {
			t.Errorf("JWKS kids at %v (-original +decoded):\n%s", at, diff)
		}
	}

	// The persisted retired keys are public only.
	var file struct {
		Retired []struct {
			Key map[string]any `json:"key"`
		} `json:"retired"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	for _, rk := range file.Retired {
		if _, ok := rk.Key["d"]; ok {
			t.Error("a retired key is persisted with its private half")
		}
	}
}

func jsonValue(t testing.TB, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return v
}

func TestKeysUnmarshalRefuses(t *testing.T) {
	k1, k2 := mustGenerateKey(t), mustGenerateKey(t)
	ring := mustKeyRing(t, k1, RetiredKey{Key: &k2.PublicKey, NotAfter: time.Now().Add(time.Hour)})
	data, err := MarshalKeyRing(ring)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	active := file["active"].(map[string]any)
	retired := file["retired"].([]any)[0].(map[string]any)["key"].(map[string]any)
	edit := func(f func(active, retired map[string]any)) string {
		var c map[string]any
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		f(c["active"].(map[string]any), c["retired"].([]any)[0].(map[string]any)["key"].(map[string]any))
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384JWK, err := jwk.Import(p384)
	if err != nil {
		t.Fatal(err)
	}
	p384JSON, err := json.Marshal(p384JWK)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data string
		want string // in the error
	}{
		{"not JSON", "{", "decode key ring"},
		{"empty", "{}", "no active key"},
		{"active key is public", edit(func(a, _ map[string]any) { delete(a, "d") }), "not a private key"},
		{"active key from P-384", `{"active":` + string(p384JSON) + `}`, "not an ECDSA P-256 key"},
		{"active kid is not the thumbprint", edit(func(a, _ map[string]any) { a["kid"] = "key-1" }), "is not the thumbprint"},
		{"retired kid is not the thumbprint", edit(func(_, r map[string]any) { r["kid"] = active["kid"] }), "is not the thumbprint"},
		{"alg is not ES256", edit(func(a, _ map[string]any) { a["alg"] = "ES384" }), "is not ES256"},
		{"symmetric key", `{"active":{"kty":"oct","k":"c2VjcmV0"}}`, "not an ECDSA P-256 key"},
		{"public half does not match", edit(func(a, _ map[string]any) { a["x"], a["y"] = retired["x"], retired["y"]; delete(a, "kid") }), "does not match its public key"},
		{"retired key is the active key", edit(func(a, r map[string]any) { r["x"], r["y"], r["kid"] = a["x"], a["y"], a["kid"] }), "in the ring twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := UnmarshalKeyRing([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("UnmarshalKeyRing error = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), active["d"].(string)) {
				t.Errorf("the error quotes the private key: %v", err)
			}
		})
	}
}
