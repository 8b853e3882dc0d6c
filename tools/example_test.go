package tools_test

import (
	"context"
	"fmt"
	"log"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/tools"
	"github.com/remotemcp/remotemcp/tools/notes/memstore"
)

type nopNotifier struct{}

func (nopNotifier) ResourceUpdated(context.Context, string, string) error { return nil }

type plainSealer struct{}

func (plainSealer) Seal(_, _ string, p []byte) string   { return string(p) }
func (plainSealer) Open(_, _, s string) ([]byte, error) { return []byte(s), nil }
func connect(s *mcp.Server) (*mcp.ClientSession, func(), error) {
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(context.Background(), st, nil)
	if err != nil {
		return nil, nil, err
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "example", Version: "1"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		return nil, nil, err
	}
	return cs, func() { cs.Close(); ss.Close() }, nil
}

// Register adds the toolset to a server's policy.Registry, each tool with
// the scopes it needs, which the bearer middleware checks before the tool
// runs.
func ExampleRegister() {
	store := memstore.New(nil)
	s := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1"}, nil)
	reg := policy.New(s, nil)
	tools.Register(reg, tools.Deps{Notes: store, Exports: store, Notifier: nopNotifier{}, Sealer: plainSealer{}})
	create, _ := reg.Lookup("tools/call", "notes_create")
	search, _ := reg.Lookup("tools/call", "notes_search")
	fmt.Println("notes_create needs", create.Scopes)
	fmt.Println("notes_search needs", search.Scopes)

	cs, done, err := connect(s)
	if err != nil {
		log.Fatal(err)
	}
	defer done()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "notes_create", Arguments: map[string]any{"title": "Groceries", "tags": []string{"Home"}}})
	if err != nil {
		log.Fatal(err)
	}
	note := res.StructuredContent.(map[string]any)
	fmt.Println(note["title"], note["tags"])
	// Output:
	// notes_create needs [notes:write]
	// notes_search needs [notes:read]
	// Groceries [home]
}
