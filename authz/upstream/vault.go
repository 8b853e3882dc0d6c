package upstream

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// ErrVaultKey is returned when a sealed record cannot be opened: unknown key
// id, wrong owner, or tampering. The three are indistinguishable on purpose.
var ErrVaultKey = errors.New("authz: sealed record cannot be opened")

// EncryptionKeys is the vault's key ring: AES-256 keys by id. The primary
// key seals; every key opens, so keys rotate without downtime: add a new
// primary, rewrap records sealed under the old one as they are used
// (NeedsRewrap), and drop the old key when none is left.
type EncryptionKeys struct {
	primary string
	keys    map[string]cipher.AEAD
}

// NewEncryptionKeys builds a ring from 32-byte keys; primary names the
// sealing key.
func NewEncryptionKeys(primary string, keys map[string][]byte) (*EncryptionKeys, error) {
	if _, ok := keys[primary]; !ok {
		return nil, fmt.Errorf("authz: vault primary key %q is not in the ring", primary)
	}
	r := &EncryptionKeys{primary: primary, keys: map[string]cipher.AEAD{}}
	for id, k := range keys {
		if id == "" || len(id) > 64 || strings.ContainsAny(id, ":, \t\n") {
			return nil, fmt.Errorf("authz: vault key id %q: want 1-64 characters without ':', ',' or spaces", id)
		}
		if len(k) != 32 {
			return nil, fmt.Errorf("authz: vault key %q: want 32 bytes (AES-256), got %d", id, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		r.keys[id] = aead
	}
	return r, nil
}

// ParseEncryptionKeys reads a ring from "id:hex[,id:hex…]", the first key
// being the primary (the form of REMOTEMCP_VAULT_KEYS). Errors never quote
// key material.
func ParseEncryptionKeys(spec string) (*EncryptionKeys, error) {
	keys := map[string][]byte{}
	var primary string
	for i, part := range strings.Split(spec, ",") {
		id, h, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("authz: vault key %d: want id:hex", i+1)
		}
		k, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("authz: vault key %q: not hex", id)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("authz: vault key id %q appears twice", id)
		}
		keys[id] = k
		if i == 0 {
			primary = id
		}
	}
	return NewEncryptionKeys(primary, keys)
}

// Sealed is an encrypted record: the key id travels with it.
type Sealed struct {
	KeyID      string `json:"kid"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ct"`
}

// aad binds a record to its owner (the user and grant it belongs to), so
// that a record copied under another owner's key does not open.
func aad(owner string) []byte {
	b := []byte("remotemcp/vault/v1\x00")
	b = binary.BigEndian.AppendUint64(b, uint64(len(owner)))
	return append(b, owner...)
}

// Seal encrypts plaintext for owner under the primary key.
func (r *EncryptionKeys) Seal(owner string, plaintext []byte) (*Sealed, error) {
	aead := r.keys[r.primary]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &Sealed{KeyID: r.primary, Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, plaintext, aad(owner))}, nil
}

// Open decrypts a record sealed for owner.
func (r *EncryptionKeys) Open(owner string, s *Sealed) ([]byte, error) {
	if s == nil {
		return nil, ErrVaultKey
	}
	aead, ok := r.keys[s.KeyID]
	if !ok || len(s.Nonce) != aead.NonceSize() {
		return nil, ErrVaultKey
	}
	p, err := aead.Open(nil, s.Nonce, s.Ciphertext, aad(owner))
	if err != nil {
		return nil, ErrVaultKey
	}
	return p, nil
}

// NeedsRewrap reports whether s was sealed under a key other than the
// primary, so the caller should seal it again.
func (r *EncryptionKeys) NeedsRewrap(s *Sealed) bool { return s.KeyID != r.primary }

// KeyIDs lists the ring's key ids, the primary first.
func (r *EncryptionKeys) KeyIDs() []string {
	ids := []string{r.primary}
	for id := range r.keys {
		if id != r.primary {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids[1:])
	return ids
}

// SealToken encrypts an upstream token for owner.
func (r *EncryptionKeys) SealToken(owner string, t *oauth2.Token) (*Sealed, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return r.Seal(owner, data)
}

// OpenToken decrypts an upstream token sealed for owner.
func (r *EncryptionKeys) OpenToken(owner string, s *Sealed) (*oauth2.Token, error) {
	data, err := r.Open(owner, s)
	if err != nil {
		return nil, err
	}
	var t oauth2.Token
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("authz: sealed token: %w", err)
	}
	return &t, nil
}
