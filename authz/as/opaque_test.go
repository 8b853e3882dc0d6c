package as

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTokensNewRefreshToken(t *testing.T) {
	seed := bytes.Repeat([]byte{0xfb}, 32)
	for _, tt := range []struct {
		name string
		make func(io.Reader) (string, string, error)
	}{
		{"refresh token", newRefreshToken},
		{"authorization code", newAuthorizationCode},
	} {
		t.Run(tt.name, func(t *testing.T) {
			token, hash, err := tt.make(bytes.NewReader(seed))
			if err != nil {
				t.Fatal(err)
			}
			want := base64.RawURLEncoding.EncodeToString(seed)
			if diff := cmp.Diff([]string{want, hashToken(want)}, []string{token, hash}); diff != "" {
				t.Errorf("token, hash (-want +got):\n%s", diff)
			}
			a, _, err := tt.make(nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _, err := tt.make(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(a) != 43 || a == b {
				t.Errorf("from crypto/rand: %q and %q, want two different 43-character tokens", a, b)
			}
			if _, _, err := tt.make(bytes.NewReader(seed[:31])); err == nil {
				t.Error("a short read gave a token")
			}
			if _, _, err := tt.make(emptyReader{}); err == nil {
				t.Error("a failing reader gave a token")
			}
		})
	}
}

func TestTokensHashToken(t *testing.T) {
	// hashToken is the S256 transform of RFC 7636, so its Appendix B
	// example is a known answer.
	if got := hashToken(rfcVerifier); got != rfcChallenge {
		t.Errorf("HashToken = %q, want %q", got, rfcChallenge)
	}
}

// emptyReader is a random source that fails.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }
