package as

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
)

// opaqueTokenBytes is the entropy of refresh tokens and authorization codes:
// 256 bits, past any guessing.
const opaqueTokenBytes = 32

// newRefreshToken returns a new opaque refresh token, 32 bytes from r
// (crypto/rand.Reader if nil) in base64url, and its hashToken. Store only
// the hash: a leaked store then yields no usable token.
func newRefreshToken(r io.Reader) (token, hash string, err error) {
	return newOpaqueToken(r)
}

// newAuthorizationCode returns a new authorization code and its hashToken,
// made like a refresh token.
func newAuthorizationCode(r io.Reader) (code, hash string, err error) {
	return newOpaqueToken(r)
}

func newOpaqueToken(r io.Reader) (token, hash string, err error) {
	if r == nil {
		r = rand.Reader
	}
	token, err = randomToken(r, opaqueTokenBytes)
	if err != nil {
		return "", "", err
	}
	return token, hashToken(token), nil
}

// hashToken is the storage key of an opaque token: the base64url SHA-256 of
// the token. A plain hash suffices because the tokens carry 256 random
// bits: there is nothing to brute-force.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// randomToken reads n bytes from r and encodes them in base64url.
func randomToken(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
