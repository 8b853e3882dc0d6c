package as

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
)

// errInvalidPKCE marks PKCE parameters that were refused. Its message is
// safe to show the client as error_description: it never quotes them.
var errInvalidPKCE = errors.New("invalid PKCE parameters")

// methodS256 is the only code_challenge_method accepted ([RFC 7636 §4.2]).
//
// [RFC 7636 §4.2]: https://www.rfc-editor.org/rfc/rfc7636#section-4.2
const methodS256 = "S256"

// validateCodeChallenge checks the code_challenge and code_challenge_method
// of an authorization request ([RFC 7636 §4.3]). The method must be exactly
// S256: "plain" and a missing method are refused, because either would let
// an attacker who sees the authorization request also redeem the code (a
// PKCE downgrade). The challenge must then be the base64url encoding,
// without padding, of a SHA-256 digest: 43 characters.
//
// [RFC 7636 §4.3]: https://www.rfc-editor.org/rfc/rfc7636#section-4.3
func validateCodeChallenge(challenge, method string) error {
	switch {
	case method == "":
		return fmt.Errorf("%w: code_challenge_method is required and must be S256", errInvalidPKCE)
	case method != methodS256:
		return fmt.Errorf("%w: code_challenge_method must be S256", errInvalidPKCE)
	case challenge == "":
		return fmt.Errorf("%w: code_challenge is required", errInvalidPKCE)
	case len(challenge) != challengeLen:
		return fmt.Errorf("%w: code_challenge must be 43 characters", errInvalidPKCE)
	}
	// Strict decoding also refuses a last character with stray low bits,
	// which no SHA-256 digest encodes to.
	if sum, err := base64.RawURLEncoding.Strict().DecodeString(challenge); err != nil || len(sum) != sha256.Size {
		return fmt.Errorf("%w: code_challenge must be a base64url SHA-256 digest without padding", errInvalidPKCE)
	}
	return nil
}

// challengeLen is the length of an unpadded base64url SHA-256 digest.
const challengeLen = 43

// verifyPKCE reports whether verifier is a well-formed code_verifier
// ([RFC 7636 §4.1]: 43 to 128 characters of [A-Za-z0-9-._~]) whose S256
// transform ([RFC 7636 §4.6]) equals challenge. The comparison takes
// constant time.
//
// [RFC 7636 §4.1]: https://www.rfc-editor.org/rfc/rfc7636#section-4.1
// [RFC 7636 §4.6]: https://www.rfc-editor.org/rfc/rfc7636#section-4.6
func verifyPKCE(verifier, challenge string) bool {
	if !validVerifier(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	computed := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) == 1
}

// validVerifier checks the code_verifier ABNF of RFC 7636 §4.1.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !verifierChar(v[i]) {
			return false
		}
	}
	return true
}

// verifierChar reports whether c may appear in a code_verifier: an RFC 3986
// unreserved character.
func verifierChar(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '.' || c == '_' || c == '~'
}
