package upstream

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

func testRing(t *testing.T, primary string, ids ...string) *EncryptionKeys {
	t.Helper()
	keys := map[string][]byte{}
	for _, id := range ids {
		keys[id] = bytes.Repeat([]byte(id[:1]), 32)
	}
	r, err := NewEncryptionKeys(primary, keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVaultSealOpen(t *testing.T) {
	r := testRing(t, "k1", "k1")
	s, err := r.Seal("alice/grant-1", []byte("upstream-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.Ciphertext, []byte("upstream-secret")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	got, err := r.Open("alice/grant-1", s)
	if err != nil || string(got) != "upstream-secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	s2, _ := r.Seal("alice/grant-1", []byte("upstream-secret"))
	if bytes.Equal(s.Nonce, s2.Nonce) || bytes.Equal(s.Ciphertext, s2.Ciphertext) {
		t.Error("two seals of the same plaintext share a nonce or ciphertext")
	}

	tamper := func(f func(*Sealed)) *Sealed {
		c := &Sealed{KeyID: s.KeyID, Nonce: bytes.Clone(s.Nonce), Ciphertext: bytes.Clone(s.Ciphertext)}
		f(c)
		return c
	}
	for _, tt := range []struct {
		name  string
		owner string
		s     *Sealed
	}{
		{"another owner", "bob/grant-1", s},
		{"owner prefix", "alice/grant-", s},
		{"flipped ciphertext bit", "alice/grant-1", tamper(func(c *Sealed) { c.Ciphertext[0] ^= 1 })},
		{"flipped nonce bit", "alice/grant-1", tamper(func(c *Sealed) { c.Nonce[0] ^= 1 })},
		{"truncated", "alice/grant-1", tamper(func(c *Sealed) { c.Ciphertext = c.Ciphertext[:len(c.Ciphertext)-1] })},
		{"unknown key id", "alice/grant-1", tamper(func(c *Sealed) { c.KeyID = "k9" })},
		{"short nonce", "alice/grant-1", tamper(func(c *Sealed) { c.Nonce = c.Nonce[:4] })},
		{"nil", "alice/grant-1", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := r.Open(tt.owner, tt.s); !errors.Is(err, ErrVaultKey) {
				t.Errorf("Open = %v, want ErrVaultKey", err)
			}
		})
	}
}

func TestVaultRotation(t *testing.T) {
	old := testRing(t, "k1", "k1")
	s, _ := old.Seal("o", []byte("p"))
	rotated := testRing(t, "k2", "k1", "k2")
	if got, err := rotated.Open("o", s); err != nil || string(got) != "p" {
		t.Fatalf("a record sealed under the old key no longer opens: %v", err)
	}
	if !rotated.NeedsRewrap(s) {
		t.Error("NeedsRewrap = false for a record under the old key")
	}
	s2, _ := rotated.Seal("o", []byte("p"))
	if s2.KeyID != "k2" || rotated.NeedsRewrap(s2) {
		t.Errorf("new seal under %q, NeedsRewrap %v; want k2, false", s2.KeyID, rotated.NeedsRewrap(s2))
	}
	if diff := cmp.Diff([]string{"k2", "k1"}, rotated.KeyIDs()); diff != "" {
		t.Errorf("KeyIDs (-want +got):\n%s", diff)
	}
	dropped := testRing(t, "k2", "k2")
	if _, err := dropped.Open("o", s); !errors.Is(err, ErrVaultKey) {
		t.Errorf("Open after dropping the old key = %v, want ErrVaultKey", err)
	}
}

func TestVaultToken(t *testing.T) {
	r := testRing(t, "k1", "k1")
	tok := &oauth2.Token{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer", Expiry: time.Unix(2000000000, 0).UTC()}
	s, err := r.SealToken("alice", tok)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.OpenToken("alice", s)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "at" || got.RefreshToken != "rt" || !got.Expiry.Equal(tok.Expiry) {
		t.Errorf("OpenToken = %+v", got)
	}
}

func TestParseEncryptionKeys(t *testing.T) {
	k1, k2 := strings.Repeat("11", 32), strings.Repeat("22", 32)
	r, err := ParseEncryptionKeys("new:" + k2 + ", old:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"new", "old"}, r.KeyIDs()); diff != "" {
		t.Errorf("KeyIDs (-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ name, spec, wantErr string }{
		{"empty", "", "want id:hex"},
		{"no colon", k1, "want id:hex"},
		{"not hex", "a:zz", "not hex"},
		{"short key", "a:" + k1[:62], "32 bytes"},
		{"duplicate id", "a:" + k1 + ",a:" + k2, "twice"},
		{"empty id", ":" + k1, "1-64 characters"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEncryptionKeys(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), k1) || strings.Contains(err.Error(), hex.EncodeToString([]byte("zz"))) {
				t.Errorf("error %q quotes key material", err)
			}
		})
	}
}

func FuzzParseEncryptionKeys(f *testing.F) {
	f.Add("a:" + strings.Repeat("ab", 32))
	f.Add("a:00,b:11")
	f.Fuzz(func(t *testing.T, spec string) {
		r, err := ParseEncryptionKeys(spec)
		if err != nil {
			return
		}
		s, err := r.Seal("o", []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.Open("o", s); err != nil || string(got) != "x" {
			t.Fatalf("round trip failed for a ring parsed from %q", spec)
		}
	})
}
