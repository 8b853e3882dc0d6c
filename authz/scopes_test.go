package authz

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

func TestParseScope(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: nil},
		{name: "only spaces", in: "   ", want: nil},
		{name: "one", in: "notes:read", want: []string{"notes:read"}},
		{name: "two", in: "notes:read notes:write", want: []string{"notes:read", "notes:write"}},
		{name: "extra spaces", in: "  notes:read   notes:write  ", want: []string{"notes:read", "notes:write"}},
		{name: "duplicates dropped, first order kept", in: "b a b c a", want: []string{"b", "a", "c"}},
		{name: "URL scopes", in: "https://graph.example.com/.default openid", want: []string{"https://graph.example.com/.default", "openid"}},
		{name: "case-sensitive", in: "Read read", want: []string{"Read", "read"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ParseScope(tt.in)); diff != "" {
				t.Errorf("ParseScope(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "a", "a b", " a  b ", "a a", "notes:read notes:write", "a\tb\nc", "\u00a0x\u2003y", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseScope(s)
		seen := map[string]bool{}
		for _, scope := range got {
			if scope == "" {
				t.Fatalf("ParseScope(%q) has an empty scope: %q", s, got)
			}
			if strings.IndexFunc(scope, unicode.IsSpace) >= 0 {
				t.Fatalf("ParseScope(%q) has a scope with white space: %q", s, scope)
			}
			if seen[scope] {
				t.Fatalf("ParseScope(%q) has a duplicate: %q", s, got)
			}
			seen[scope] = true
			if !strings.Contains(s, scope) {
				t.Fatalf("ParseScope(%q) made up %q", s, scope)
			}
		}
		if again := ParseScope(strings.Join(got, " ")); !slices.Equal(got, again) {
			t.Fatalf("ParseScope does not round-trip: %q then %q", got, again)
		}
	})
}

func TestFingerprint(t *testing.T) {
	// SHA-256("abc") = ba7816bf 8f01cfea … (FIPS 180-2 test vector).
	if got, want := Fingerprint("abc"), "ba7816bf"; got != want {
		t.Errorf("Fingerprint(%q) = %q, want %q", "abc", got, want)
	}
	secrets := []string{
		"",
		"eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ1In0.c2ln",
		"opaque-refresh-token-0123456789abcdef",
		"0123456789abcdef", // hex itself: must not come back verbatim
		"ba7816bf",
	}
	seen := map[string]string{}
	for _, s := range secrets {
		fp := Fingerprint(s)
		if len(fp) != 8 {
			t.Errorf("Fingerprint(%q) = %q: want 8 characters", s, fp)
		}
		if _, err := hex.DecodeString(fp); err != nil || strings.ToLower(fp) != fp {
			t.Errorf("Fingerprint(%q) = %q: want lowercase hex", s, fp)
		}
		if fp != Fingerprint(s) {
			t.Errorf("Fingerprint(%q) is not stable", s)
		}
		sum := sha256.Sum256([]byte(s))
		if want := hex.EncodeToString(sum[:4]); fp != want {
			t.Errorf("Fingerprint(%q) = %q, want the SHA-256 prefix %q", s, fp, want)
		}
		if s != "" && strings.Contains(fp, s) {
			t.Errorf("Fingerprint(%q) = %q reveals the input", s, fp)
		}
		if prev, ok := seen[fp]; ok {
			t.Errorf("Fingerprint(%q) = Fingerprint(%q) = %q", s, prev, fp)
		}
		seen[fp] = s
	}
}
