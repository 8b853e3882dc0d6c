package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/remotemcp/remotemcp"
	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/upstream"
	"github.com/remotemcp/remotemcp/policy"
)

// fileConfig is the configuration file (--config): what flags cannot say
// well. Every key is in the README's configuration-file reference.
type fileConfig struct {
	SignIn signInSection       `yaml:"signin"`
	Tools  map[string]toolRule `yaml:"tools"`
}

// signInSection is the file's "signin": who may sign in.
type signInSection struct {
	Users        []string `yaml:"users"`
	EmailDomains []string `yaml:"email_domains"`
	GitHubOrgs   []string `yaml:"github_orgs"`
	GitHubTeams  []string `yaml:"github_teams"`
	Groups       []string `yaml:"groups"`
	GroupsClaim  string   `yaml:"groups_claim"`
	Contact      string   `yaml:"contact"`
}

// toolRule is what one of the binary's own tools needs, in place of what
// its code declares.
type toolRule struct {
	Scopes []string `yaml:"scopes"`
	Groups []string `yaml:"groups"`
}

// maxConfigFileBytes bounds the configuration file.
const maxConfigFileBytes = 1 << 20

// signIn is what the configuration file and the sign-in flags decide.
type signIn struct {
	// Allow is the allow-list; nil allows everyone.
	Allow *upstream.AllowList
	// GroupsClaim names the claim of the user's groups ("" means groups).
	GroupsClaim string
	// Contact is whom a refused user should ask.
	Contact string
	// ToolRules replace what the named tools need.
	ToolRules map[string]toolRule
}

// signInFlags override the configuration file's keys of the same name.
type signInFlags struct {
	file                                *string
	users, domains, orgs, teams, groups *string
	groupsClaim, contact                *string
}

func addSignInFlags(fs *flag.FlagSet) *signInFlags {
	return &signInFlags{
		file:        fs.String("config", "", "YAML configuration file: sign-in allow-lists and per-tool rules (see README: Configuration file); flags and environment override its keys"),
		users:       fs.String("allow-users", "", "comma-separated upstream subjects or GitHub logins allowed to sign in (overrides signin.users)"),
		domains:     fs.String("allow-email-domains", "", "comma-separated domains whose verified e-mail addresses may sign in (overrides signin.email_domains)"),
		orgs:        fs.String("allow-github-orgs", "", "--upstream github: comma-separated organizations whose members may sign in (overrides signin.github_orgs)"),
		teams:       fs.String("allow-github-teams", "", "--upstream github: comma-separated org/team-slug whose members may sign in (overrides signin.github_teams)"),
		groups:      fs.String("allow-groups", "", "comma-separated values of the groups claim allowed to sign in (overrides signin.groups)"),
		groupsClaim: fs.String("groups-claim", "", "name of the token or userinfo claim holding the user's groups or roles (overrides signin.groups_claim; default groups)"),
		contact:     fs.String("signin-contact", "", "whom a refused user should ask for access, shown on the refusal page (overrides signin.contact)"),
	}
}

// setSignIn reads the configuration file, lays the sign-in flags over it,
// and checks the result against the --auth mode and upstream.
func (c *config) setSignIn(sf *signInFlags) error {
	var fc fileConfig
	if *sf.file != "" {
		data, err := readConfigFile(*sf.file)
		if err != nil {
			return err
		}
		p, err := parseConfigFile(*sf.file, data)
		if err != nil {
			return err
		}
		fc = *p
	}
	s := fc.SignIn
	for _, o := range []struct {
		name, flag string
		dst        *[]string
	}{{"allow-users", *sf.users, &s.Users}, {"allow-email-domains", *sf.domains, &s.EmailDomains}, {"allow-github-orgs", *sf.orgs, &s.GitHubOrgs},
		{"allow-github-teams", *sf.teams, &s.GitHubTeams}, {"allow-groups", *sf.groups, &s.Groups}} {
		if o.flag != "" {
			// A value of only commas and spaces would replace the file's
			// list with none, and so let everyone in: refused, as an
			// empty list in the file is.
			if *o.dst = splitList(o.flag); len(*o.dst) == 0 {
				return fmt.Errorf("--%s %q names no one: give at least one entry, or leave the flag out", o.name, o.flag)
			}
		}
	}
	if *sf.groupsClaim != "" {
		s.GroupsClaim = *sf.groupsClaim
	}
	if *sf.contact != "" {
		s.Contact = *sf.contact
	}
	allow := &upstream.AllowList{Users: s.Users, EmailDomains: s.EmailDomains, Orgs: s.GitHubOrgs, Teams: s.GitHubTeams, Groups: s.Groups}
	c.SignIn = signIn{GroupsClaim: s.GroupsClaim, Contact: s.Contact, ToolRules: fc.Tools}
	if !allow.Empty() {
		c.SignIn.Allow = allow
	}
	return c.checkSignIn(allow)
}

// checkSignIn checks that the allow-lists and tool rules fit the --auth
// mode: GitHub memberships only with --upstream github, which has no
// groups claim; nothing to check with --auth none.
func (c *config) checkSignIn(allow *upstream.AllowList) error {
	upstreamName := ""
	if c.Proxy != nil {
		upstreamName = c.Proxy.Upstream
	}
	si := remotemcp.SignIn{Allow: allow, GroupsClaim: c.SignIn.GroupsClaim, Contact: c.SignIn.Contact}
	if err := si.Check(remotemcp.Auth(c.Auth), upstreamName); err != nil {
		return err
	}
	for name, r := range c.SignIn.ToolRules {
		for _, sc := range r.Scopes {
			if c.Auth == "proxy" && sc != c.ScopeRead && sc != c.ScopeWrite {
				return fmt.Errorf("tools.%s.scopes: %q is not a scope this authorization server offers (%s, %s)", name, sc, c.ScopeRead, c.ScopeWrite)
			}
		}
	}
	return nil
}

// splitList reads a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// applyToolRules replaces what the tools named in the file need.
func (c *config) applyToolRules(reg *policy.Registry) error {
	for _, name := range slices.Sorted(maps.Keys(c.SignIn.ToolRules)) {
		r := c.SignIn.ToolRules[name]
		a := policy.Need(r.Scopes...)
		if len(r.Groups) > 0 {
			a = a.For(policy.Group(r.Groups...))
		}
		if err := reg.SetToolAccess(name, a); err != nil {
			return fmt.Errorf("configuration file: tools.%s: no such tool", name)
		}
	}
	return nil
}

// readConfigFile reads the configuration file, bounded in size.
func readConfigFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--config: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--config: %v", err)
	}
	if len(data) > maxConfigFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxConfigFileBytes)
	}
	return data, nil
}

// parseConfigFile reads the configuration file: one YAML document, every
// key known, every value of its type and valid. Errors name the file, the
// line, and what to write instead.
func parseConfigFile(name string, data []byte) (*fileConfig, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, errors.New(yamlMessage(name, err.Error()))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var fc fileConfig
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			return nil, fmt.Errorf("%s:%s", name, typeErrorMessage(te.Errors[0]))
		}
		return nil, errors.New(yamlMessage(name, err.Error()))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:%d: a second YAML document: keep the whole configuration in one (drop the ---)", name, extra.Line)
	}
	if err := checkFileConfig(name, &root, &fc); err != nil {
		return nil, err
	}
	return &fc, nil
}

// checkFileConfig checks the values the types let through, with the
// line of each problem.
func checkFileConfig(name string, root *yaml.Node, fc *fileConfig) error {
	at := func(path ...any) string { return name + ":" + strconv.Itoa(lineOf(root, path...)) }
	s := fc.SignIn
	for _, l := range []struct {
		key  string
		list []string
	}{{"users", s.Users}, {"email_domains", s.EmailDomains}, {"github_orgs", s.GitHubOrgs}, {"github_teams", s.GitHubTeams}, {"groups", s.Groups}} {
		if n := valueOf(root, "signin", l.key); n != nil && len(l.list) == 0 {
			return fmt.Errorf("%s: signin.%s is empty: an empty list would allow nobody by it and everybody by the others; list names, or drop the key", at("signin", l.key), l.key)
		}
		for i, v := range l.list {
			one := upstream.AllowList{}
			switch l.key {
			case "users":
				one.Users = []string{v}
			case "email_domains":
				one.EmailDomains = []string{v}
			case "github_orgs":
				one.Orgs = []string{v}
			case "github_teams":
				one.Teams = []string{v}
			case "groups":
				one.Groups = []string{v}
			}
			if err := one.Validate(); err != nil {
				return fmt.Errorf("%s: signin.%s[%d]: %v", at("signin", l.key, i), l.key, i, err)
			}
		}
	}
	if n := valueOf(root, "signin", "groups_claim"); n != nil && strings.TrimSpace(s.GroupsClaim) == "" {
		return fmt.Errorf("%s: signin.groups_claim is empty: name the claim (e.g. groups, roles), or drop the key for the default groups", at("signin", "groups_claim"))
	}
	for _, tool := range slices.Sorted(maps.Keys(fc.Tools)) {
		r := fc.Tools[tool]
		if tool == "" || len(tool) > 128 {
			return fmt.Errorf("%s: tools: a tool name must have 1 to 128 characters", at("tools"))
		}
		if len(r.Scopes) == 0 {
			return fmt.Errorf("%s: tools.%s.scopes: list the scopes the tool needs, e.g. [notes:write] (a rule cannot open a tool to every caller)", at("tools", tool), tool)
		}
		for i, sc := range r.Scopes {
			if !authz.ValidScopeToken(sc) {
				return fmt.Errorf("%s: tools.%s.scopes[%d]: %q is not a scope name (printable ASCII, no spaces or quotes)", at("tools", tool, "scopes", i), tool, i, sc)
			}
		}
		for i, g := range r.Groups {
			if g == "" || len(g) > upstream.MaxGroupLen {
				return fmt.Errorf("%s: tools.%s.groups[%d]: want a group name of 1 to %d bytes", at("tools", tool, "groups", i), tool, i, upstream.MaxGroupLen)
			}
		}
	}
	return nil
}

// valueOf finds the node at path (mapping keys, sequence indexes) under
// the document root; nil if absent.
func valueOf(root *yaml.Node, path ...any) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return nil
			}
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next = n.Content[i+1]
				}
			}
			if next == nil {
				return nil
			}
			n = next
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return nil
			}
			n = n.Content[k]
		}
	}
	return n
}

// lineOf is the line of the node at path, or of the deepest part of it
// that exists.
func lineOf(root *yaml.Node, path ...any) int {
	for i := len(path); i >= 0; i-- {
		if n := valueOf(root, path[:i]...); n != nil {
			return n.Line
		}
	}
	return 1
}

var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (.+) not found in type main\.(\w+)$`)
	cannotRE       = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
)

// typeErrorMessage rewrites one of yaml's type errors as "line: problem:
// fix".
func typeErrorMessage(e string) string {
	if m := unknownFieldRE.FindStringSubmatch(e); m != nil {
		section, keys := knownKeys(m[3])
		return fmt.Sprintf("%s: unknown key %q%s; the keys here are %s (see README: Configuration file)", m[1], m[2], section, strings.Join(keys, ", "))
	}
	if m := cannotRE.FindStringSubmatch(e); m != nil {
		want := map[string]string{
			"[]string":                 "a list, like [a, b]",
			"string":                   "a string",
			"main.signInSection":       "a mapping of keys (users, email_domains, ...)",
			"map[string]main.toolRule": "a mapping of tool names to rules",
			"main.toolRule":            "a mapping with scopes (and groups)",
			"main.fileConfig":          "a mapping with the sections signin and tools",
		}[m[4]]
		if want == "" {
			want = m[4]
		}
		got := strings.TrimPrefix(m[2], "!!")
		if m[3] != "" {
			got += " " + strconv.Quote(m[3])
		}
		return fmt.Sprintf("%s: want %s, not the %s", m[1], want, got)
	}
	return strings.TrimPrefix(e, "line ")
}

// knownKeys lists the keys of the struct type named typ and says where it
// is.
func knownKeys(typ string) (where string, keys []string) {
	var t reflect.Type
	switch typ {
	case "fileConfig":
		t, where = reflect.TypeFor[fileConfig](), " at the top level"
	case "signInSection":
		t, where = reflect.TypeFor[signInSection](), " in signin"
	case "toolRule":
		t, where = reflect.TypeFor[toolRule](), " in a tool rule"
	default:
		return "", nil
	}
	for i := range t.NumField() {
		keys = append(keys, t.Field(i).Tag.Get("yaml"))
	}
	return where, keys
}

// yamlMessage makes a yaml syntax error of the file name read
// "name:line: problem".
func yamlMessage(name, e string) string {
	e = strings.TrimPrefix(e, "yaml: ")
	if rest, ok := strings.CutPrefix(e, "line "); ok {
		return name + ":" + rest
	}
	return name + ": " + e
}
