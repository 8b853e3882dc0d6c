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

// allowed is STYLE.md's dependency table, as enforced: for each package of
// the module, the project packages and the external packages (besides the
// standard library) it may import directly. "*" allows anything. One change
// to STYLE.md's table: tools/notes is the notes domain (record, store
// interfaces, caller identity) that tools, resources and prompts share,
// so that they need not import each other.
var allowed = map[string]struct{ project, external []string }{
	"cmd/remotemcp":          {project: []string{"*"}, external: []string{"*"}},
	"cmd/remotemcp/devidp":   {},
	"cmd/remotemcp/fixtures": {project: []string{"policy"}, external: []string{sdk + "/mcp", sdk + "/jsonrpc", "github.com/google/jsonschema-go/jsonschema", "github.com/yosida95/uritemplate/v3"}},
	"mcpserver":              {project: []string{"policy"}, external: []string{sdk + "/mcp", sdk + "/auth", sdk + "/jsonrpc"}},
	// policy: what each tool, prompt and resource needs, declared as it is
	// registered; the product packages register through it and mcpserver
	// asks it, so it imports neither.
	"policy":               {external: []string{sdk + "/mcp", sdk + "/jsonrpc", "github.com/yosida95/uritemplate/v3"}},
	"authz/memstore":       {project: []string{"authz"}},
	"authz/storetest":      {project: []string{"authz"}, external: []string{"github.com/google/go-cmp/cmp"}},
	"mcpserver/memstore":   {project: []string{"mcpserver"}, external: []string{sdk + "/mcp"}},
	"mcpserver/storetest":  {project: []string{"mcpserver"}, external: []string{sdk + "/mcp", sdk + "/jsonrpc", "github.com/google/go-cmp/cmp"}},
	"tools":                {project: []string{"tools/notes", "policy"}, external: []string{sdk + "/mcp", sdk + "/auth", sdk + "/jsonrpc"}},
	"tools/notes":          {external: []string{sdk + "/mcp", sdk + "/auth"}},
	"tools/notes/memstore": {project: []string{"tools/notes"}},
	// Redis implementations of the stores (issue: stateless replicas), and
	// the test helper that starts a real redis-server; internal/ is outside
	// STYLE.md's table because it is test infrastructure only.
	"tools/notes/redisstore": {project: []string{"tools/notes"}, external: []string{redis}},
	"tools/notes/storetest":  {project: []string{"tools/notes"}, external: []string{"github.com/google/go-cmp/cmp"}},
	"authz/redisstore":       {project: []string{"authz"}, external: []string{redis}},
	"mcpserver/redisstore":   {project: []string{"mcpserver"}, external: []string{redis, sdk + "/mcp"}},
	"internal/redistest":     {},
	"resources":              {project: []string{"tools/notes", "policy"}, external: []string{sdk + "/mcp", sdk + "/auth"}},
	"prompts":                {project: []string{"tools/notes", "policy"}, external: []string{sdk + "/mcp", sdk + "/auth"}},
	"wellknown":              {},
	// The benchmark harness (make bench): a program like cmd/remotemcp, which
	// mints tokens and writes grants with authz's own code.
	"bench/cmd/mcpbench": {project: []string{"*"}, external: []string{"*"}},
	// httprc is jwx/v3's HTTP cache, which jwk.Cache is built on.
	"authz": {external: []string{sdk + "/auth", sdk + "/oauthex", "golang.org/x/oauth2", "golang.org/x/oauth2/endpoints",
		"github.com/lestrrat-go/jwx/v3/jwa", "github.com/lestrrat-go/jwx/v3/jwk", "github.com/lestrrat-go/jwx/v3/jws",
		"github.com/lestrrat-go/jwx/v3/jwt", "github.com/lestrrat-go/httprc/v3"}},
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
		if rel == "" && len(p.Imports) == 0 {
			continue // the test-only root package
		}
		rule, ok := allowed[rel]
		if !ok {
			t.Errorf("package %s is not in the import table of arch_test.go (and STYLE.md): add it with its allowed imports", rel)
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
