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

func TestRequired(t *testing.T) {
	policy := NewScopePolicy([]Rule{
		{Method: "tools/call", Name: "notes_create", Scopes: []string{"notes:write"}},
		{Method: "tools/call", Name: "notes_*", Scopes: []string{"notes:read"}},
		{Method: "tools/call", Name: "admin_purge", Scopes: []string{"notes:write", "admin"}},
		{Method: "resources/read", Name: "notes://*", Scopes: []string{"notes:read"}},
		{Method: "prompts/get", Scopes: []string{"prompts:use"}},
		{Method: "prompts/get", Name: "secret", Scopes: []string{"never:reached"}},
	}, nil)
	for _, tt := range []struct {
		name string
		ops  [][2]string
		want []string
	}{
		{name: "no operations", ops: nil, want: nil},
		{name: "no rule for the method", ops: [][2]string{{"tools/list", ""}}, want: nil},
		{name: "no rule for the name", ops: [][2]string{{"tools/call", "whoami"}}, want: nil},
		{name: "exact name", ops: [][2]string{{"tools/call", "notes_create"}}, want: []string{"notes:write"}},
		{name: "first match wins over a later prefix rule", ops: [][2]string{{"tools/call", "notes_create"}}, want: []string{"notes:write"}},
		{name: "prefix pattern", ops: [][2]string{{"tools/call", "notes_search"}}, want: []string{"notes:read"}},
		{name: "prefix pattern matches the bare prefix", ops: [][2]string{{"tools/call", "notes_"}}, want: []string{"notes:read"}},
		{name: "an exact rule is not a prefix", ops: [][2]string{{"tools/call", "admin_purge_all"}}, want: nil},
		{name: "resource prefix", ops: [][2]string{{"resources/read", "notes://42"}}, want: []string{"notes:read"}},
		{name: "resource outside the prefix", ops: [][2]string{{"resources/read", "files://42"}}, want: nil},
		{name: "resource prefix is case-sensitive", ops: [][2]string{{"resources/read", "NOTES://42"}}, want: nil},
		{name: "method must match exactly", ops: [][2]string{{"resources/subscribe", "notes://42"}}, want: nil},
		{name: "empty rule name matches every name", ops: [][2]string{{"prompts/get", "secret"}}, want: []string{"prompts:use"}},
		{name: "several scopes come back sorted", ops: [][2]string{{"tools/call", "admin_purge"}}, want: []string{"admin", "notes:write"}},
		{
			name: "union over a batch, sorted and without duplicates",
			ops:  [][2]string{{"resources/read", "notes://1"}, {"tools/call", "notes_create"}, {"tools/call", "notes_search"}, {"prompts/get", "x"}},
			want: []string{"notes:read", "notes:write", "prompts:use"},
		},
		{
			name: "the order of operations does not matter",
			ops:  [][2]string{{"prompts/get", "x"}, {"tools/call", "notes_search"}, {"tools/call", "notes_create"}, {"resources/read", "notes://1"}},
			want: []string{"notes:read", "notes:write", "prompts:use"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, policy.Required(tt.ops)); diff != "" {
				t.Errorf("Required(%q) (-want +got):\n%s", tt.ops, diff)
			}
		})
	}
}

func TestNewScopePolicyCopiesRules(t *testing.T) {
	rules := []Rule{{Method: "tools/call", Name: "notes_create", Scopes: []string{"notes:write"}}}
	policy := NewScopePolicy(rules, nil)
	rules[0] = Rule{Method: "tools/call", Name: "notes_create"}
	if diff := cmp.Diff([]string{"notes:write"}, policy.Required([][2]string{{"tools/call", "notes_create"}})); diff != "" {
		t.Errorf("changing the caller's slice changed the policy (-want +got):\n%s", diff)
	}
}

func TestSatisfied(t *testing.T) {
	policy := NewScopePolicy(nil, map[string][]string{
		"notes:write": {"notes:read"},
		"admin":       {"notes:write", "users:read"},
		"a":           {"b"},
		"b":           {"c", "a"}, // a cycle: a ⇒ b ⇒ a
		"self":        {"self"},
	})
	for _, tt := range []struct {
		name    string
		granted []string
		need    []string
		want    bool
	}{
		{name: "nothing needed, nothing granted", want: true},
		{name: "nothing needed", granted: []string{"notes:read"}, want: true},
		{name: "exact", granted: []string{"notes:read"}, need: []string{"notes:read"}, want: true},
		{name: "missing", granted: []string{"notes:read"}, need: []string{"notes:write"}, want: false},
		{name: "nothing granted", need: []string{"notes:read"}, want: false},
		{name: "implied", granted: []string{"notes:write"}, need: []string{"notes:read"}, want: true},
		{name: "implied and direct together", granted: []string{"notes:write"}, need: []string{"notes:read", "notes:write"}, want: true},
		{name: "the hierarchy does not go upward", granted: []string{"notes:read"}, need: []string{"notes:read", "notes:write"}, want: false},
		{name: "transitive", granted: []string{"admin"}, need: []string{"notes:read", "users:read"}, want: true},
		{name: "cycle terminates forward", granted: []string{"a"}, need: []string{"c"}, want: true},
		{name: "cycle terminates backward", granted: []string{"b"}, need: []string{"a"}, want: true},
		{name: "cycle grants nothing outside it", granted: []string{"a"}, need: []string{"notes:read"}, want: false},
		{name: "self-loop", granted: []string{"self"}, need: []string{"self"}, want: true},
		{name: "all needed scopes are required", granted: []string{"users:read"}, need: []string{"users:read", "notes:read"}, want: false},
		{name: "scopes are case-sensitive", granted: []string{"NOTES:WRITE"}, need: []string{"notes:read"}, want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := policy.Satisfied(tt.granted, tt.need); got != tt.want {
				t.Errorf("Satisfied(%q, %q) = %v, want %v", tt.granted, tt.need, got, tt.want)
			}
		})
	}
}

func TestSatisfiedWithoutHierarchy(t *testing.T) {
	policy := NewScopePolicy(nil, nil)
	if !policy.Satisfied([]string{"x"}, []string{"x"}) {
		t.Error("Satisfied([x], [x]) = false with a nil hierarchy, want true")
	}
	if policy.Satisfied([]string{"notes:write"}, []string{"notes:read"}) {
		t.Error("Satisfied([notes:write], [notes:read]) = true with a nil hierarchy, want false")
	}
}

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
