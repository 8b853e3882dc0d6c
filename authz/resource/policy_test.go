package resource

import (
	"testing"

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
