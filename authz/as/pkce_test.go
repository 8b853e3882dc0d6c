package as

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// The example of RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestVerifyPKCE(t *testing.T) {
	longest := strings.Repeat("aZ09-._~", 16) // 128 characters
	shortest := strings.Repeat("x", 43)
	for _, tt := range []struct {
		name      string
		verifier  string
		challenge string
		want      bool
	}{
		{"RFC 7636 appendix B", rfcVerifier, rfcChallenge, true},
		{"128 characters", longest, s256(longest), true},
		{"43 characters", shortest, s256(shortest), true},
		{"wrong verifier", strings.Replace(rfcVerifier, "d", "e", 1), rfcChallenge, false},
		{"wrong challenge", rfcVerifier, s256(shortest), false},
		{"plain: verifier equals challenge", rfcVerifier, rfcVerifier, false},
		{"challenge with padding", rfcVerifier, rfcChallenge + "=", false},
		{"challenge in std base64", rfcVerifier, strings.Replace(rfcChallenge, "-", "+", 1), false},
		{"empty verifier", "", s256(""), false},
		{"empty challenge", rfcVerifier, "", false},
		{"42 characters", shortest[1:], s256(shortest[1:]), false},
		{"129 characters", longest + "a", s256(longest + "a"), false},
		{"space", shortest + " ", s256(shortest + " "), false},
		{"plus", shortest + "+", s256(shortest + "+"), false},
		{"slash", shortest + "/", s256(shortest + "/"), false},
		{"percent", shortest + "%41", s256(shortest + "%41"), false},
		{"non-ASCII", shortest + "é", s256(shortest + "é"), false},
		{"NUL", shortest + "\x00", s256(shortest + "\x00"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := verifyPKCE(tt.verifier, tt.challenge); got != tt.want {
				t.Errorf("VerifyPKCE(%q, %q) = %v, want %v", tt.verifier, tt.challenge, got, tt.want)
			}
		})
	}
}

func TestPKCEValidateCodeChallenge(t *testing.T) {
	for _, tt := range []struct {
		name      string
		challenge string
		method    string
		wantErr   string // "" for none
	}{
		{"RFC 7636 appendix B", rfcChallenge, "S256", ""},
		{"plain is a downgrade", rfcChallenge, "plain", "code_challenge_method must be S256"},
		{"plain with the verifier", rfcVerifier, "plain", "code_challenge_method must be S256"},
		{"missing method", rfcChallenge, "", "code_challenge_method is required and must be S256"},
		{"lowercase method", rfcChallenge, "s256", "code_challenge_method must be S256"},
		{"method with space", rfcChallenge, "S256 ", "code_challenge_method must be S256"},
		{"missing challenge", "", "S256", "code_challenge is required"},
		{"42 characters", rfcChallenge[1:], "S256", "code_challenge must be 43 characters"},
		{"44 characters", rfcChallenge + "A", "S256", "code_challenge must be 43 characters"},
		{"padded", rfcChallenge + "=", "S256", "code_challenge must be 43 characters"},
		{"std base64 alphabet", strings.Replace(rfcChallenge, "-", "+", 1), "S256", "code_challenge must be a base64url SHA-256 digest without padding"},
		{"stray low bits in the last character", rfcChallenge[:42] + "N", "S256", "code_challenge must be a base64url SHA-256 digest without padding"},
		{"space", rfcChallenge[:42] + " ", "S256", "code_challenge must be a base64url SHA-256 digest without padding"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := validateCodeChallenge(tt.challenge, tt.method)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateCodeChallenge: %v", err)
				}
				return
			}
			if !errors.Is(err, errInvalidPKCE) {
				t.Fatalf("ValidateCodeChallenge = %v, want ErrInvalidPKCE", err)
			}
			if want := errInvalidPKCE.Error() + ": " + tt.wantErr; err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
		})
	}
}

func FuzzVerifyPKCE(f *testing.F) {
	f.Add(rfcVerifier, rfcChallenge)
	f.Add(rfcVerifier+" ", rfcChallenge)
	f.Add(strings.Repeat("~", 128), "")
	f.Add("", "")
	f.Add(strings.Repeat("a", 42)+"\xff", rfcChallenge)
	f.Fuzz(func(t *testing.T, verifier, challenge string) {
		got := verifyPKCE(verifier, challenge)
		valid := len(verifier) >= 43 && len(verifier) <= 128
		for _, r := range verifier {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", r) {
				valid = false
			}
		}
		if got && !valid {
			t.Fatalf("VerifyPKCE accepted the malformed verifier %q", verifier)
		}
		if got && challenge != s256(verifier) {
			t.Fatalf("VerifyPKCE(%q, %q) accepted a challenge that is not the verifier's S256", verifier, challenge)
		}
		if valid && !verifyPKCE(verifier, s256(verifier)) {
			t.Fatalf("VerifyPKCE refused the well-formed verifier %q with its own challenge", verifier)
		}
	})
}

func FuzzPKCEValidateCodeChallenge(f *testing.F) {
	f.Add(rfcChallenge, "S256")
	f.Add(rfcChallenge, "plain")
	f.Add(rfcChallenge[:42]+"N", "S256")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, challenge, method string) {
		err := validateCodeChallenge(challenge, method)
		if err != nil {
			if !errors.Is(err, errInvalidPKCE) {
				t.Fatalf("error %v does not wrap ErrInvalidPKCE", err)
			}
			return
		}
		if method != "S256" {
			t.Fatalf("accepted method %q", method)
		}
		sum, derr := base64.RawURLEncoding.DecodeString(challenge)
		if derr != nil || len(sum) != sha256.Size || base64.RawURLEncoding.EncodeToString(sum) != challenge {
			t.Fatalf("accepted %q, which is not the canonical encoding of a SHA-256 digest", challenge)
		}
	})
}
