package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/authz/upstream"
	"github.com/remotemcp/remotemcp/policy"
)

const fullConfigFile = `# who may sign in
signin:
  users: [alice, "1234567"]
  email_domains:
    - example.com
  groups: [eng]
  groups_claim: roles
  contact: it-help@example.com
tools:
  notes_delete:
    scopes: [notes:write]
`

func TestParseConfigFile(t *testing.T) {
	fc, err := parseConfigFile("remotemcp.yaml", []byte(fullConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	want := &fileConfig{
		SignIn: signInSection{Users: []string{"alice", "1234567"}, EmailDomains: []string{"example.com"}, Groups: []string{"eng"},
			GroupsClaim: "roles", Contact: "it-help@example.com"},
		Tools: map[string]toolRule{"notes_delete": {Scopes: []string{"notes:write"}}},
	}
	if diff := cmp.Diff(want, fc); diff != "" {
		t.Errorf("parsed (-want +got):\n%s", diff)
	}
	for _, empty := range []string{"", "# nothing\n", "{}\n", "signin: {}\n"} {
		if _, err := parseConfigFile("remotemcp.yaml", []byte(empty)); err != nil {
			t.Errorf("%q: %v", empty, err)
		}
	}
}

// TestParseConfigFileRefuses: every bad file is refused with the file, the
// line, and what to write instead.
func TestParseConfigFileRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		want       []string
	}{
		{"unknown top-level key", "signin:\n  users: [a]\nbackends: []\n", []string{`remotemcp.yaml:3: unknown key "backends" at the top level`, "signin, tools"}},
		{"unknown signin key", "signin:\n  users: [a]\n  email_domain: [example.com]\n", []string{`remotemcp.yaml:3: unknown key "email_domain" in signin`, "email_domains"}},
		{"unknown rule key", "tools:\n  notes_get:\n    scope: [notes:read]\n", []string{`remotemcp.yaml:3: unknown key "scope" in a tool rule`, "scopes"}},
		{"string for a list", "signin:\n  email_domains: example.com\n", []string{"remotemcp.yaml:2: want a list, like [a, b], not the str \"example"}},
		{"list for a string", "signin:\n  contact: [a, b]\n", []string{"remotemcp.yaml:2:", "want a string"}},
		{"list for the file", "- a\n- b\n", []string{"remotemcp.yaml:1:", "want a mapping with the sections signin and tools"}},
		{"bad domain", "signin:\n  email_domains:\n    - example.com\n    - alice@example.com\n", []string{"remotemcp.yaml:4: signin.email_domains[1]", "not a domain name like example.com"}},
		{"wildcard domain", "signin:\n  email_domains: ['*.example.com']\n", []string{"remotemcp.yaml:2: signin.email_domains[0]"}},
		{"bad team", "signin:\n  github_teams: [platform]\n", []string{"remotemcp.yaml:2: signin.github_teams[0]", "org/team-slug"}},
		{"empty list", "signin:\n  users: []\n  email_domains: [example.com]\n", []string{"remotemcp.yaml:2: signin.users is empty", "drop the key"}},
		{"null list", "signin:\n  groups:\n", []string{"remotemcp.yaml:2: signin.groups is empty"}},
		{"empty user", "signin:\n  users: ['']\n", []string{"remotemcp.yaml:2: signin.users[0]", "non-empty"}},
		{"empty groups claim", "signin:\n  groups_claim: ''\n", []string{"remotemcp.yaml:2: signin.groups_claim is empty"}},
		{"rule without scopes", "tools:\n  notes_get:\n    groups: [eng]\n", []string{"remotemcp.yaml:3: tools.notes_get.scopes: list the scopes"}},
		{"bad scope", "tools:\n  notes_get:\n    scopes:\n      - 'notes read'\n", []string{"remotemcp.yaml:4: tools.notes_get.scopes[0]", "not a scope name"}},
		{"syntax error", "signin:\n  users: [a\n", []string{"remotemcp.yaml:"}},
		{"tab indentation", "signin:\n\tusers: [a]\n", []string{"remotemcp.yaml:2:"}},
		{"two documents", "signin: {}\n---\ntools: {}\n", []string{"remotemcp.yaml:", "second YAML document"}},
		{"duplicate key", "signin:\n  users: [a]\n  users: [b]\n", []string{"remotemcp.yaml:3:", "already defined"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfigFile("remotemcp.yaml", []byte(tt.file))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// writeConfig writes a configuration file for a test.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "remotemcp.yaml")
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestConfigFileFlagsOverride: a flag or its environment twin replaces
// the file's key of the same name; the others stay.
func TestConfigFileFlagsOverride(t *testing.T) {
	file := writeConfig(t, fullConfigFile)
	jwt := []string{"--auth", "jwt", "--issuer", "https://idp.example.com", "--jwks-url", "https://idp.example.com/jwks", "--config", file}
	cfg, err := parseConfig(append(jwt, "--allow-email-domains", "example.org, example.net"), envOf(map[string]string{"REMOTEMCP_GROUPS_CLAIM": "groups"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := &upstream.AllowList{Users: []string{"alice", "1234567"}, EmailDomains: []string{"example.org", "example.net"}, Groups: []string{"eng"}}
	if diff := cmp.Diff(want, cfg.SignIn.Allow); diff != "" {
		t.Errorf("allow-list (-want +got):\n%s", diff)
	}
	if cfg.SignIn.GroupsClaim != "groups" || cfg.SignIn.Contact != "it-help@example.com" {
		t.Errorf("groups claim %q, contact %q", cfg.SignIn.GroupsClaim, cfg.SignIn.Contact)
	}
	if _, err := parseConfig(append(jwt, "--allow-email-domains", "not a domain"), envOf(nil), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not a domain name") {
		t.Errorf("a bad flag value: %v", err)
	}
	if _, err := parseConfig([]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, envOf(nil), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("a missing file: %v", err)
	}
}

// TestConfigFileFitsTheMode: allow-lists the --auth mode or upstream
// cannot check are refused at start.
func TestConfigFileFitsTheMode(t *testing.T) {
	jwt := []string{"--auth", "jwt", "--issuer", "https://idp.example.com", "--jwks-url", "https://idp.example.com/jwks"}
	github := []string{"--auth", "proxy", "--upstream", "github"}
	creds := map[string]string{"REMOTEMCP_UPSTREAM_CLIENT_ID": "id", "REMOTEMCP_UPSTREAM_CLIENT_SECRET": "secret"}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"comma-only list", append(jwt, "--allow-users", " , "), nil, `--allow-users " , " names no one`},
		{"none", []string{"--allow-users", "alice"}, nil, "auth mode none has no users to check"},
		{"orgs with jwt", append(jwt, "--allow-github-orgs", "my-org"), nil, "need auth mode proxy with the github upstream"},
		{"groups with github", append(github, "--allow-groups", "eng"), creds, "GitHub has no groups claim"},
		{"groups claim with github", append(github, "--groups-claim", "roles"), creds, "for OpenID providers"},
		{"tool scope not offered", []string{"--auth", "proxy", "--config", writeConfig(t, "tools:\n  notes_get:\n    scopes: [admin]\n")}, nil, `"admin" is not a scope this authorization server offers`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, envOf(tt.env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseConfig = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if _, err := parseConfig(append(github, "--allow-github-teams", "my-org/platform"), envOf(creds), &bytes.Buffer{}); err != nil {
		t.Errorf("teams with github: %v", err)
	}
}

// TestApplyToolRules: a rule replaces what the tool's code declared; a
// rule for a tool the server does not have stops the start.
func TestApplyToolRules(t *testing.T) {
	reg := policy.New(mcp.NewServer(&mcp.Implementation{Name: "t"}, nil), nil)
	reg.AddTool(&mcp.Tool{Name: "notes_get", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{}, nil
	}, policy.Need("notes:read"))
	cfg := &config{SignIn: signIn{ToolRules: map[string]toolRule{"notes_get": {Scopes: []string{"notes:write"}}}}}
	if err := cfg.applyToolRules(reg); err != nil {
		t.Fatal(err)
	}
	if a, _ := reg.Lookup("tools/call", "notes_get"); !cmp.Equal(a.Scopes, []string{"notes:write"}) {
		t.Errorf("notes_get needs %v, want notes:write", a.Scopes)
	}
	// groups: only members may see or call the tool, whatever their scopes.
	cfg.SignIn.ToolRules["notes_get"] = toolRule{Scopes: []string{"notes:read"}, Groups: []string{"eng"}}
	if err := cfg.applyToolRules(reg); err != nil {
		t.Fatal(err)
	}
	a, _ := reg.Lookup("tools/call", "notes_get")
	member := &auth.TokenInfo{UserID: "u", Scopes: []string{"notes:read"}, Extra: map[string]any{"groups": []string{"eng"}}}
	other := &auth.TokenInfo{UserID: "v", Scopes: []string{"notes:read", "notes:write"}, Extra: map[string]any{"groups": []string{"sales"}}}
	if v := reg.Decide(member, a); v != policy.Allowed {
		t.Errorf("a member of eng: %v, want Allowed", v)
	}
	if v := reg.Decide(other, a); v != policy.Hidden {
		t.Errorf("a non-member: %v, want Hidden", v)
	}
	cfg.SignIn.ToolRules["notes_gte"] = toolRule{Scopes: []string{"notes:read"}}
	if err := cfg.applyToolRules(reg); err == nil || !strings.Contains(err.Error(), "tools.notes_gte: no such tool") {
		t.Errorf("a rule for a missing tool: %v", err)
	}
}

// FuzzParseConfigFile: whatever the file, the parser answers a config or
// an error that names the file, and never panics.
func FuzzParseConfigFile(f *testing.F) {
	f.Add(fullConfigFile)
	f.Add("signin:\n  users: []\n")
	f.Add("tools:\n  x:\n    scopes: [a]\n    groups: [b]\n")
	f.Add("signin: &a\n  users: *a\n")
	f.Add("- [a, {b: c}]\n")
	f.Fuzz(func(t *testing.T, file string) {
		if len(file) > 4096 {
			return
		}
		fc, err := parseConfigFile("c.yaml", []byte(file))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "c.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if fc == nil {
			t.Fatal("no config and no error")
		}
	})
}
