package policy_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/policy"
)

func TestCallerOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		info *auth.TokenInfo
		want policy.Caller
	}{
		{name: "no token", want: policy.Caller{}},
		{name: "subject only", info: &auth.TokenInfo{UserID: "u1"}, want: policy.Caller{Subject: "u1"}},
		{name: "every key", info: &auth.TokenInfo{UserID: "u1", Extra: map[string]any{
			authz.ExtraEmail: "a@example.com", authz.ExtraClientID: "c1", authz.ExtraGroups: []string{"g1", "g2"},
		}}, want: policy.Caller{Subject: "u1", Email: "a@example.com", ClientID: "c1", Groups: []string{"g1", "g2"}}},
		{name: "groups as decoded from JSON", info: &auth.TokenInfo{UserID: "u1", Extra: map[string]any{
			authz.ExtraGroups: []any{"g1", 7, nil, "g2", map[string]any{"g3": true}},
		}}, want: policy.Caller{Subject: "u1", Groups: []string{"g1", "g2"}}},
		{name: "mistyped values read as absent", info: &auth.TokenInfo{UserID: "u1", Extra: map[string]any{
			authz.ExtraEmail: []string{"a@example.com"}, authz.ExtraClientID: 5, authz.ExtraGroups: "admins",
		}}, want: policy.Caller{Subject: "u1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, policy.CallerOf(tt.info)); diff != "" {
				t.Errorf("CallerOf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPredicates(t *testing.T) {
	alice := policy.Caller{Subject: "alice", Email: "Alice@Example.COM", Groups: []string{"staff", "admins"}, ClientID: "cli"}
	anon := policy.Caller{}
	for _, tt := range []struct {
		name   string
		p      policy.Predicate
		caller policy.Caller
		want   bool
	}{
		{"subject", policy.Subject("bob", "alice"), alice, true},
		{"subject is exact", policy.Subject("Alice"), alice, false},
		{"empty subject never matches", policy.Subject(""), anon, false},
		{"email without regard to case", policy.Email("alice@example.com"), alice, true},
		{"another email", policy.Email("bob@example.com"), alice, false},
		{"no email never matches", policy.Email(""), anon, false},
		{"domain", policy.EmailDomain("other.org", "example.com"), alice, true},
		{"domain is not a suffix", policy.EmailDomain("ample.com"), alice, false},
		{"a subdomain is another domain", policy.EmailDomain("example.com"), policy.Caller{Email: "a@eu.example.com"}, false},
		{"the domain is after the last @", policy.EmailDomain("example.com"), policy.Caller{Email: `"a@example.com"@evil.org`}, false},
		{"no email, no domain", policy.EmailDomain("example.com"), anon, false},
		{"empty domain never matches", policy.EmailDomain(""), policy.Caller{Email: "a@"}, false},
		{"group", policy.Group("admins"), alice, true},
		{"group is exact", policy.Group("Admins"), alice, false},
		{"not in the group", policy.Group("ops"), alice, false},
		{"empty group never matches", policy.Group(""), policy.Caller{Groups: []string{""}}, false},
		{"client", policy.ClientID("cli"), alice, true},
		{"another client", policy.ClientID("other"), alice, false},
		{"any of", policy.AnyOf(policy.Group("ops"), policy.Subject("alice")), alice, true},
		{"any of none", policy.AnyOf(), alice, false},
		{"all of", policy.AllOf(policy.Group("admins"), policy.EmailDomain("example.com")), alice, true},
		{"all of, one false", policy.AllOf(policy.Group("admins"), policy.ClientID("other")), alice, false},
		{"all of none", policy.AllOf(), anon, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p(tt.caller); got != tt.want {
				t.Errorf("= %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPredicatesCopyTheirArguments: changing the slice given to a helper
// afterwards changes nothing.
func TestPredicatesCopyTheirArguments(t *testing.T) {
	groups := []string{"admins"}
	p := policy.Group(groups...)
	groups[0] = "everyone"
	if p(policy.Caller{Groups: []string{"everyone"}}) {
		t.Error("the predicate followed a change of its argument")
	}
}

func TestNilPredicatePanics(t *testing.T) {
	for name, f := range map[string]func(){
		"For":   func() { policy.Open.For(nil) },
		"AnyOf": func() { policy.AnyOf(policy.Group("a"), nil) },
		"AllOf": func() { policy.AllOf(nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if s, _ := recover().(string); !strings.HasPrefix(s, "policy: ") {
					t.Errorf("recovered %q, want a panic prefixed with \"policy: \"", s)
				}
			}()
			f()
		})
	}
}

func TestDecide(t *testing.T) {
	r := policy.New(newServer(), &policy.Options{Implies: map[string][]string{"w": {"r"}}})
	admins := policy.Group("admins")
	token := func(scopes []string, groups ...string) *auth.TokenInfo {
		return &auth.TokenInfo{UserID: "u", Scopes: scopes, Extra: map[string]any{authz.ExtraGroups: groups}}
	}
	for _, tt := range []struct {
		name   string
		info   *auth.TokenInfo
		access policy.Access
		want   policy.Verdict
	}{
		{"open, no token", nil, policy.Open, policy.Allowed},
		{"scoped, no token: scopes are not checked", nil, policy.Need("w"), policy.Allowed},
		{"predicate, no token: no caller satisfies it", nil, policy.Open.For(policy.AllOf()), policy.Hidden},
		{"open", token(nil), policy.Open, policy.Allowed},
		{"scope granted", token([]string{"r"}), policy.Need("r"), policy.Allowed},
		{"scope implied", token([]string{"w"}), policy.Need("r"), policy.Allowed},
		{"scope missing", token([]string{"r"}), policy.Need("w"), policy.StepUp},
		{"predicate holds, scope granted", token([]string{"w"}, "admins"), policy.Need("w").For(admins), policy.Allowed},
		{"predicate holds, scope missing: step up", token([]string{"r"}, "admins"), policy.Need("w").For(admins), policy.StepUp},
		{"predicate false, scope granted", token([]string{"w"}, "staff"), policy.Need("w").For(admins), policy.Hidden},
		{"predicate false, scope missing: no scope would help", token(nil, "staff"), policy.Need("w").For(admins), policy.Hidden},
		{"open with a predicate", token(nil, "admins"), policy.Open.For(admins), policy.Allowed},
		{"two predicates: both must hold", token(nil, "admins"), policy.Open.For(admins).For(policy.Subject("other")), policy.Hidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Decide(tt.info, tt.access); got != tt.want {
				t.Errorf("Decide = %v, want %v", got, tt.want)
			}
		})
	}
}
