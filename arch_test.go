package remotemcp_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/remotemcp/remotemcp"

// allowed is the package import table, as enforced: for each package of
// the module, the project packages and the external packages (besides the
// standard library) it may import directly. "*" allows anything.
// tools/notes is the notes domain (record, store interfaces, caller
// identity) that tools, resources and prompts share, so that they need not
// import each other.
//
// authz is split by role, one RFC family per package. The direction is
// authz (the OAuth error type, scope strings) <- resource, token, upstream
// <- as (the authorization server) <- its stores <- cmd. Nothing but cmd,
// bench and the authorization server's own stores imports authz/as, and the
// resource server (authz/resource) imports neither authz/as nor authz/token:
// a server that only trusts tokens needs none of the code that issues them.
var allowed = map[string]struct{ project, external []string }{
	// The public API (the module root, package remotemcp): where the
	// packages meet, for the binary, examples/ and any program with its own
	// go-sdk server. It never imports the notes product (tools, resources,
	// prompts), of which the binary is the one user.
	// Its one dependency beyond them is the Prometheus client, for the
	// collectors it registers on Options.Metrics.
	"": {project: []string{"authz", "authz/as", "authz/memstore", "authz/redisstore", "authz/resource", "authz/token", "authz/upstream",
		"cmd/remotemcp/devidp", "mcpserver", "mcpserver/memstore", "mcpserver/redisstore", "policy", "wellknown"},
		external: []string{sdk + "/auth", sdk + "/mcp", redis, "github.com/prometheus/client_golang/prometheus"}},
	// A program of its own on the public API, as a user of the module
	// writes one.
	"examples/teamserver":    {project: []string{"policy"}, external: []string{module, sdk + "/mcp"}},
	"cmd/remotemcp":          {project: []string{"*"}, external: []string{"*"}},
	"cmd/remotemcp/devidp":   {project: []string{"internal/pagestyle"}},
	"cmd/remotemcp/fixtures": {project: []string{"policy"}, external: []string{sdk + "/mcp", sdk + "/jsonrpc", "github.com/google/jsonschema-go/jsonschema", "github.com/yosida95/uritemplate/v3"}},
	"mcpserver":              {project: []string{"policy", "internal/ttlcache"}, external: []string{sdk + "/mcp", sdk + "/auth", sdk + "/jsonrpc"}},
	// policy: what each tool, prompt and resource needs, declared as it is
	// registered; the product packages register through it and mcpserver
	// asks it, so it imports neither. It reads the caller from the
	// verified token (go-sdk auth.TokenInfo) under the keys that authz
	// names for the verifiers.
	"policy":               {project: []string{"authz"}, external: []string{sdk + "/mcp", sdk + "/auth", sdk + "/jsonrpc", "github.com/yosida95/uritemplate/v3"}},
	"mcpserver/memstore":   {project: []string{"mcpserver"}, external: []string{sdk + "/mcp"}},
	"mcpserver/storetest":  {project: []string{"mcpserver"}, external: []string{sdk + "/mcp", sdk + "/jsonrpc", "github.com/google/go-cmp/cmp"}},
	"tools":                {project: []string{"tools/notes", "policy"}, external: []string{sdk + "/mcp", sdk + "/auth", sdk + "/jsonrpc"}},
	"tools/notes":          {external: []string{sdk + "/mcp", sdk + "/auth"}},
	"tools/notes/memstore": {project: []string{"tools/notes"}},
	// Redis implementations of the stores, shared by stateless replicas, and
	// the test helper that starts a real redis-server (test infrastructure
	// only).
	"tools/notes/redisstore": {project: []string{"tools/notes"}, external: []string{redis}},
	"tools/notes/storetest":  {project: []string{"tools/notes"}, external: []string{"github.com/google/go-cmp/cmp"}},
	"mcpserver/redisstore":   {project: []string{"mcpserver"}, external: []string{redis, sdk + "/mcp"}},
	"internal/redistest":     {},
	"resources":              {project: []string{"tools/notes", "policy"}, external: []string{sdk + "/mcp", sdk + "/auth"}},
	"prompts":                {project: []string{"tools/notes", "policy"}, external: []string{sdk + "/mcp", sdk + "/auth"}},
	"wellknown":              {},
	// The benchmark harness (make bench): a program like cmd/remotemcp, which
	// mints tokens and writes grants with authz's own code.
	"bench/cmd/mcpbench": {project: []string{"*"}, external: []string{"*"}},
	// The one bounded cache with per-entry expiry, standard library only:
	// the verifiers, the revocation answers, the client metadata documents
	// and the session records keep what they remember in it.
	"internal/ttlcache": {},
	// The stylesheet of the pages people see while they connect an app
	// (consent, errors, the development sign-in). Standard library only.
	"internal/pagestyle": {},
	// The shared OAuth pieces: the wire error type, scope strings, the
	// store sentinel. Standard library only.
	"authz": {},
	// The resource server: the bearer middleware, JWT (JWKS) and
	// introspection verifiers. httprc is jwx/v3's HTTP cache, which
	// jwk.Cache is built on.
	"authz/resource": {project: []string{"authz", "authz/internal/tokencheck", "internal/ttlcache"}, external: []string{sdk + "/auth",
		"github.com/lestrrat-go/jwx/v3/jwa", "github.com/lestrrat-go/jwx/v3/jwk", "github.com/lestrrat-go/jwx/v3/jws",
		"github.com/lestrrat-go/jwx/v3/jwt", "github.com/lestrrat-go/httprc/v3"}},
	// Our access tokens: signing key ring, issuer, JWKS, revocation check.
	"authz/token": {project: []string{"authz", "authz/internal/tokencheck", "internal/ttlcache"}, external: []string{sdk + "/auth",
		"github.com/lestrrat-go/jwx/v3/jwa", "github.com/lestrrat-go/jwx/v3/jwk", "github.com/lestrrat-go/jwx/v3/jws",
		"github.com/lestrrat-go/jwx/v3/jwt"}},
	// What the two token verifiers (resource and token) share: the
	// verified-token cache and the wording of refusals.
	"authz/internal/tokencheck": {project: []string{"authz", "internal/ttlcache"}, external: []string{"github.com/lestrrat-go/jwx/v3/jwt"}},
	// The upstream leg: providers, the vault of their tokens, its refresh.
	"authz/upstream": {project: []string{"authz", "authz/internal/tokencheck"}, external: []string{"golang.org/x/oauth2", "golang.org/x/oauth2/endpoints", "golang.org/x/sync/singleflight"}},
	// The authorization server, and the stores of its records (with the
	// vault's, whose interfaces authz/upstream defines).
	"authz/as":         {project: []string{"authz", "authz/token", "authz/upstream", "internal/ttlcache", "internal/pagestyle"}, external: []string{sdk + "/auth", sdk + "/oauthex", "golang.org/x/oauth2", "golang.org/x/sync/singleflight"}},
	"authz/memstore":   {project: []string{"authz", "authz/as", "authz/upstream"}},
	"authz/storetest":  {project: []string{"authz", "authz/as", "authz/upstream"}, external: []string{"github.com/google/go-cmp/cmp"}},
	"authz/redisstore": {project: []string{"authz", "authz/as", "authz/upstream", "internal/ttlcache"}, external: []string{redis}},
	// Helpers for the tests of the authz packages (a settable clock, signed
	// test tokens, goldens); imported by tests only.
	"authz/authztest": {external: []string{"github.com/google/go-cmp/cmp", "github.com/lestrrat-go/jwx/v3/jwa",
		"github.com/lestrrat-go/jwx/v3/jwk", "github.com/lestrrat-go/jwx/v3/jws", "github.com/lestrrat-go/jwx/v3/jwt"}},
}

const (
	sdk   = "github.com/modelcontextprotocol/go-sdk"
	redis = "github.com/redis/go-redis/v9"
)

func TestImportTable(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		rule, ok := allowed[rel]
		if !ok {
			t.Errorf("package %s is not in the import table of arch_test.go: add it with its allowed imports", rel)
			continue
		}
		seen++
		for _, imp := range p.Imports {
			if !strings.Contains(strings.Split(imp, "/")[0], ".") {
				continue // standard library
			}
			if target, ok := strings.CutPrefix(imp, module+"/"); ok {
				if !slices.Contains(rule.project, "*") && !slices.Contains(rule.project, target) {
					t.Errorf("%s imports %s: not allowed by the import table", rel, target)
				}
				continue
			}
			if !slices.Contains(rule.external, "*") && !slices.Contains(rule.external, imp) {
				t.Errorf("%s imports external %s: not allowed by the import table", rel, imp)
			}
		}
	}
	if seen < 5 {
		t.Fatalf("checked only %d packages; is go list working?", seen)
	}
}

// TestAuthorizationServerImporters: the authorization server is wired by
// the public API and the binary (and the benchmark harness, a program like it, which writes
// grants through its stores); besides them only its own stores import it.
// The resource server, the MCP layer and the features never do.
func TestAuthorizationServerImporters(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	may := []string{"", "cmd/remotemcp", "bench/cmd/mcpbench", "authz/memstore", "authz/redisstore", "authz/storetest"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		if slices.Contains(strings.Fields(imports), module+"/authz/as") && !slices.Contains(may, rel) {
			t.Errorf("%s imports the authorization server (authz/as); only %v may", rel, may)
		}
	}
}
