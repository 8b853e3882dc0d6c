package policy

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestSetToolAccess(t *testing.T) {
	r := New(mcp.NewServer(&mcp.Implementation{Name: "t"}, nil), nil)
	r.AddTool(&mcp.Tool{Name: "drop", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{}, nil
	}, Need("notes:read"))
	if err := r.SetToolAccess("drop", Need("admin")); err != nil {
		t.Fatal(err)
	}
	a, known := r.Lookup("tools/call", "drop")
	if !known {
		t.Fatal("the tool is gone")
	}
	if diff := cmp.Diff([]string{"admin"}, a.Scopes); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
	if err := r.SetToolAccess("nope", Need("admin")); err == nil {
		t.Error("SetToolAccess of an unknown tool succeeded")
	}
}
