package policy_test

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/policy"
)

// Each item declares what it needs as it is registered: scopes, and for
// some a predicate over the caller. Decide is what the endpoint asks for
// each request: a caller the predicate admits but whose token lacks the
// scope gets a step-up; one it does not admit is never shown the item.
func ExampleAccess_For() {
	s := mcp.NewServer(&mcp.Implementation{Name: "example", Version: "1"}, nil)
	reg := policy.New(s, &policy.Options{Implies: map[string][]string{"notes:write": {"notes:read"}}})
	purge := func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, struct{}, error) {
		return &mcp.CallToolResult{}, struct{}{}, nil
	}
	policy.AddTool(reg, &mcp.Tool{Name: "notes_purge"}, purge,
		policy.Need("notes:write").For(policy.AnyOf(policy.Group("admins"), policy.EmailDomain("example.com"))))

	a, _ := reg.Lookup("tools/call", "notes_purge")
	for _, info := range []*auth.TokenInfo{
		{UserID: "root", Scopes: []string{"notes:write"}, Extra: map[string]any{authz.ExtraGroups: []string{"admins"}}},
		{UserID: "ann", Scopes: []string{"notes:read"}, Extra: map[string]any{authz.ExtraEmail: "ann@example.com"}},
		{UserID: "bob", Scopes: []string{"notes:write"}, Extra: map[string]any{authz.ExtraEmail: "bob@example.org"}},
		nil, // no authentication
	} {
		name := "anonymous"
		if info != nil {
			name = info.UserID
		}
		fmt.Println(name, reg.Decide(info, a))
	}
	// Output:
	// root Allowed
	// ann StepUp
	// bob Hidden
	// anonymous Hidden
}
