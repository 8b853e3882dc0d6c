package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// A KeyRing holds the ECDSA P-256 keys that sign our access tokens: one
// active key, which signs, and retired keys, which no longer sign but stay
// published in the JWKS until the last token they signed has expired. Every
// key's kid is its [RFC 7638] thumbprint, so a kid can never name two keys.
// A KeyRing is safe for concurrent use.
//
// [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
type KeyRing struct {
	mu      sync.RWMutex
	active  ringKey
	retired []ringKey
}

// A RetiredKey is a key that has stopped signing.
type RetiredKey struct {
	// Key is the public half: a retired key never signs again, so its
	// private half need not be kept.
	Key *ecdsa.PublicKey
	// NotAfter is when the last token signed with Key expires; from then on
	// Key is neither published nor accepted.
	NotAfter time.Time
}

// ringKey is one key of a KeyRing. Its fields are never changed after
// construction; Rotate replaces whole values.
type ringKey struct {
	kid      string
	priv     *ecdsa.PrivateKey // nil once retired
	pub      *ecdsa.PublicKey
	jwk      jwk.Key   // public JWK with kid, alg and use; cloned before it leaves the ring
	notAfter time.Time // zero for the active key
}

// errKeyNotP256 is returned for a key of another type or curve.
var errKeyNotP256 = errors.New("authz: signing keys must be ECDSA P-256 keys")

// GenerateKey returns a new ECDSA P-256 signing key from crypto/rand.
func GenerateKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// NewKeyRing returns a ring that signs with active and still publishes the
// retired keys until their NotAfter. The keys are copied: later changes to
// the values passed in do not reach the ring.
func NewKeyRing(active *ecdsa.PrivateKey, retired ...RetiredKey) (*KeyRing, error) {
	if active == nil {
		panic("authz: NewKeyRing needs an active key")
	}
	a, err := newActiveKey(active)
	if err != nil {
		return nil, err
	}
	r := &KeyRing{active: a}
	for _, rk := range retired {
		k, err := newRetiredKey(rk)
		if err != nil {
			return nil, err
		}
		if r.has(k.kid) {
			return nil, fmt.Errorf("authz: key %s is in the ring twice", k.kid)
		}
		r.retired = append(r.retired, k)
	}
	return r, nil
}

// Rotate makes newKey the active key and retires the current one. The old
// key stays published until now+tokenLifetime, when the last token it may
// have signed expires; tokenLifetime must therefore be at least the access
// token lifetime of every Issuer using the ring. Retired keys already past
// their NotAfter are dropped.
//
// Clients of a JWKS cache it (JWKSHandler allows 5 minutes), and an external
// verifier that refreshes only on schedule may refuse tokens of the new key
// for that long; our own Issuer.Verify sees the new key at once.
func (r *KeyRing) Rotate(newKey *ecdsa.PrivateKey, tokenLifetime time.Duration, now time.Time) error {
	if newKey == nil {
		panic("authz: Rotate needs a key")
	}
	if tokenLifetime <= 0 {
		return errors.New("authz: rotation needs a positive token lifetime")
	}
	a, err := newActiveKey(newKey)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.has(a.kid) {
		return fmt.Errorf("authz: key %s is already in the ring", a.kid)
	}
	old := r.active
	old.priv = nil
	old.notAfter = now.Add(tokenLifetime)
	r.retired = slices.DeleteFunc(r.retired, func(k ringKey) bool { return now.After(k.notAfter) })
	r.retired = append(r.retired, old)
	r.active = a
	return nil
}

// JWKS returns the JWK Set to publish at now ([RFC 7517 §5]): the public
// halves of the active key and of the retired keys not yet past their
// NotAfter, each with kid, "alg": "ES256" and "use": "sig". It never holds a
// private key. The set is a fresh copy the caller may change.
//
// [RFC 7517 §5]: https://www.rfc-editor.org/rfc/rfc7517#section-5
func (r *KeyRing) JWKS(now time.Time) jwk.Set {
	set := jwk.NewSet()
	for _, k := range r.published(now) {
		c, err := k.jwk.Clone()
		if err != nil {
			// Cloning a public EC key built by newRingKey cannot fail.
			panic("authz: clone JWK: " + err.Error())
		}
		if err := set.AddKey(c); err != nil {
			panic("authz: add JWK: " + err.Error())
		}
	}
	return set
}

// signer returns the active key.
func (r *KeyRing) signer() ringKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.active
}

// verificationKey returns the public key named kid if it is published at
// now.
func (r *KeyRing) verificationKey(kid string, now time.Time) (*ecdsa.PublicKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if kid == r.active.kid {
		return r.active.pub, true
	}
	for _, k := range r.retired {
		if k.kid == kid && !now.After(k.notAfter) {
			return k.pub, true
		}
	}
	return nil, false
}

// published lists the active key and the retired keys still valid at now.
func (r *KeyRing) published(now time.Time) []ringKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []ringKey{r.active}
	for _, k := range r.retired {
		if !now.After(k.notAfter) {
			out = append(out, k)
		}
	}
	return out
}

// has reports whether kid is in the ring; the caller holds r.mu or owns r.
func (r *KeyRing) has(kid string) bool {
	return kid == r.active.kid || slices.ContainsFunc(r.retired, func(k ringKey) bool { return k.kid == kid })
}

// newActiveKey checks a private key and copies it into a ringKey.
func newActiveKey(k *ecdsa.PrivateKey) (ringKey, error) {
	priv, err := copyPrivate(k)
	if err != nil {
		return ringKey{}, err
	}
	rk, err := newRingKey(&priv.PublicKey)
	rk.priv = priv
	return rk, err
}

// newRetiredKey checks a retired key and copies it into a ringKey.
func newRetiredKey(k RetiredKey) (ringKey, error) {
	if k.NotAfter.IsZero() {
		return ringKey{}, errors.New("authz: a retired key needs its NotAfter")
	}
	pub, err := copyPublic(k.Key)
	if err != nil {
		return ringKey{}, err
	}
	rk, err := newRingKey(pub)
	rk.notAfter = k.NotAfter
	return rk, err
}

// newRingKey builds the public JWK and kid of a checked public key.
func newRingKey(pub *ecdsa.PublicKey) (ringKey, error) {
	key, err := jwk.Import(pub)
	if err != nil {
		return ringKey{}, fmt.Errorf("authz: import signing key: %w", err)
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return ringKey{}, fmt.Errorf("authz: thumbprint of signing key: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	for k, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: jwa.ES256(), jwk.KeyUsageKey: jwk.ForSignature} {
		if err := key.Set(k, v); err != nil {
			return ringKey{}, fmt.Errorf("authz: set %s of signing key: %w", k, err)
		}
	}
	return ringKey{kid: kid, pub: pub, jwk: key}, nil
}

// copyPrivate checks that k is a well-formed P-256 private key and returns a
// copy rebuilt from its scalar, which also proves the public half matches.
func copyPrivate(k *ecdsa.PrivateKey) (out *ecdsa.PrivateKey, err error) {
	if k == nil || k.Curve != elliptic.P256() {
		return nil, errKeyNotP256
	}
	// Bytes and Equal panic on a key whose fields were left nil.
	defer func() {
		if recover() != nil {
			out, err = nil, errors.New("authz: malformed ECDSA private key")
		}
	}()
	raw, err := k.Bytes()
	if err != nil {
		return nil, fmt.Errorf("authz: ECDSA private key: %w", err)
	}
	out, err = ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("authz: ECDSA private key: %w", err)
	}
	if !out.PublicKey.Equal(&k.PublicKey) {
		return nil, errors.New("authz: the ECDSA private key does not match its public key")
	}
	return out, nil
}

// copyPublic checks that k is a P-256 public key on the curve and returns a
// copy.
func copyPublic(k *ecdsa.PublicKey) (out *ecdsa.PublicKey, err error) {
	if k == nil || k.Curve != elliptic.P256() {
		return nil, errKeyNotP256
	}
	defer func() {
		if recover() != nil {
			out, err = nil, errors.New("authz: malformed ECDSA public key")
		}
	}()
	raw, err := k.Bytes()
	if err != nil {
		return nil, fmt.Errorf("authz: ECDSA public key: %w", err)
	}
	out, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("authz: ECDSA public key: %w", err)
	}
	return out, nil
}

// JWKSHandler serves ring.JWKS(now()) as JSON, for the jwks_uri of our
// authorization server metadata ([RFC 8414 §2]). Clients may cache it for 5
// minutes, which is why a key stays published after it stops signing. now
// nil means time.Now.
//
// [RFC 8414 §2]: https://www.rfc-editor.org/rfc/rfc8414#section-2
func JWKSHandler(ring *KeyRing, now func() time.Time) http.Handler {
	if ring == nil {
		panic("authz: JWKSHandler needs a KeyRing")
	}
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.Marshal(ring.JWKS(now()))
		if err != nil {
			http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(body)
	})
}

// keyRingJSON is the persisted form of a KeyRing.
type keyRingJSON struct {
	// Active is the private JWK of the active key.
	Active json.RawMessage `json:"active"`
	// Retired are the retired keys, public JWKs.
	Retired []retiredKeyJSON `json:"retired,omitempty"`
}

type retiredKeyJSON struct {
	Key      json.RawMessage `json:"key"`
	NotAfter time.Time       `json:"not_after"`
}

// MarshalKeyRing encodes the ring's key material as JSON, for a secret file
// or environment variable:
//
//	{"active": {private JWK}, "retired": [{"key": {public JWK}, "not_after": RFC 3339}]}
//
// The output holds a private key: store it as a secret, never log it.
func MarshalKeyRing(r *KeyRing) ([]byte, error) {
	r.mu.RLock()
	active, retired := r.active, slices.Clone(r.retired)
	r.mu.RUnlock()

	priv, err := jwk.Import(active.priv)
	if err != nil {
		return nil, fmt.Errorf("authz: import active key: %w", err)
	}
	for k, v := range map[string]any{jwk.KeyIDKey: active.kid, jwk.AlgorithmKey: jwa.ES256(), jwk.KeyUsageKey: jwk.ForSignature} {
		if err := priv.Set(k, v); err != nil {
			return nil, fmt.Errorf("authz: set %s of active key: %w", k, err)
		}
	}
	var out keyRingJSON
	if out.Active, err = json.Marshal(priv); err != nil {
		return nil, fmt.Errorf("authz: encode active key: %w", err)
	}
	for _, k := range retired {
		pub, err := json.Marshal(k.jwk)
		if err != nil {
			return nil, fmt.Errorf("authz: encode retired key %s: %w", k.kid, err)
		}
		out.Retired = append(out.Retired, retiredKeyJSON{Key: pub, NotAfter: k.notAfter.UTC()})
	}
	return json.Marshal(out)
}

// UnmarshalKeyRing decodes what MarshalKeyRing encoded. Kids are recomputed
// from the keys; a kid in the input that is not the key's thumbprint is an
// error, as it means the input was edited or corrupted. A retired key may
// be given as a private JWK; only its public half is kept.
func UnmarshalKeyRing(data []byte) (*KeyRing, error) {
	var in keyRingJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("authz: decode key ring: %w", err)
	}
	if len(in.Active) == 0 {
		return nil, errors.New("authz: decode key ring: no active key")
	}
	key, err := parseRingJWK(in.Active)
	if err != nil {
		return nil, fmt.Errorf("authz: decode active key: %w", err)
	}
	isPriv, err := jwk.IsPrivateKey(key)
	if err != nil || !isPriv {
		return nil, errors.New("authz: decode active key: not a private key")
	}
	var active ecdsa.PrivateKey
	if err := jwk.Export(key, &active); err != nil {
		return nil, fmt.Errorf("authz: decode active key: %w", err)
	}
	retired := make([]RetiredKey, 0, len(in.Retired))
	for i, rk := range in.Retired {
		key, err := parseRingJWK(rk.Key)
		if err != nil {
			return nil, fmt.Errorf("authz: decode retired key %d: %w", i, err)
		}
		pubKey, err := key.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("authz: decode retired key %d: %w", i, err)
		}
		var pub ecdsa.PublicKey
		if err := jwk.Export(pubKey, &pub); err != nil {
			return nil, fmt.Errorf("authz: decode retired key %d: %w", i, err)
		}
		retired = append(retired, RetiredKey{Key: &pub, NotAfter: rk.NotAfter})
	}
	return NewKeyRing(&active, retired...)
}

// parseRingJWK parses one JWK of a persisted ring: an EC key on P-256 whose
// alg, if any, is ES256 and whose kid, if any, is its RFC 7638 thumbprint.
func parseRingJWK(raw json.RawMessage) (jwk.Key, error) {
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return nil, err
	}
	ec, ok := pub.(jwk.ECDSAPublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	if crv, _ := ec.Crv(); crv != jwa.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	if alg, ok := key.Algorithm(); ok && alg.String() != jwa.ES256().String() {
		return nil, fmt.Errorf("alg %q is not ES256", alg.String())
	}
	if kid, ok := key.KeyID(); ok {
		tp, err := pub.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, err
		}
		if kid != base64.RawURLEncoding.EncodeToString(tp) {
			return nil, fmt.Errorf("kid %q is not the thumbprint of its key", kid)
		}
	}
	return key, nil
}
