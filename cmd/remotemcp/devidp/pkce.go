package devidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// methodS256 is the only code_challenge_method accepted ([RFC 7636 §4.2]):
// "plain" and a missing method are refused as a PKCE downgrade.
//
// [RFC 7636 §4.2]: https://www.rfc-editor.org/rfc/rfc7636#section-4.2
const methodS256 = "S256"

// checkChallenge checks the PKCE parameters of an authorization request
// ([RFC 7636 §4.3]) and returns the invalid_request to send if they are
// refused.
//
// [RFC 7636 §4.3]: https://www.rfc-editor.org/rfc/rfc7636#section-4.3
func checkChallenge(challenge, method string) *oauthError {
	switch {
	case method == "":
		return oauthErr(invalidRequest, "PKCE is required: code_challenge_method must be S256")
	case method != methodS256:
		return oauthErr(invalidRequest, "code_challenge_method must be S256")
	case challenge == "":
		return oauthErr(invalidRequest, "code_challenge is required")
	}
	// Strict decoding also refuses a last character with stray low bits,
	// which no SHA-256 digest encodes to.
	if sum, err := base64.RawURLEncoding.Strict().DecodeString(challenge); err != nil || len(sum) != sha256.Size {
		return oauthErr(invalidRequest, "code_challenge must be a base64url SHA-256 digest without padding")
	}
	return nil
}

// verifyPKCE reports whether verifier is a well-formed code_verifier
// ([RFC 7636 §4.1]: 43 to 128 unreserved characters) whose S256 transform
// equals challenge ([RFC 7636 §4.6]), comparing in constant time.
//
// [RFC 7636 §4.1]: https://www.rfc-editor.org/rfc/rfc7636#section-4.1
// [RFC 7636 §4.6]: https://www.rfc-editor.org/rfc/rfc7636#section-4.6
func verifyPKCE(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		if !unreserved(verifier[i]) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	computed := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) == 1
}
