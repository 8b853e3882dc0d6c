package policy

import (
	"context"
	"fmt"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/authz"
)

// benchRegistry has 30 tools: a third need r, a third w, a third r and
// the group admins.
func benchRegistry() (*Registry, []*mcp.Tool) {
	r := New(mcp.NewServer(&mcp.Implementation{Name: "b", Version: "1"}, nil), &Options{Implies: map[string][]string{"w": {"r"}}})
	noop := func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, struct{}, error) {
		return &mcp.CallToolResult{}, struct{}{}, nil
	}
	var all []*mcp.Tool
	for i := range 30 {
		t := &mcp.Tool{Name: fmt.Sprintf("tool_%02d", i)}
		a := []Access{Need("r"), Need("w"), Need("r").For(Group("admins"))}[i%3]
		AddTool(r, t, noop, a)
		all = append(all, t)
	}
	return r, all
}

// BenchmarkListFilter is the middleware's work on a tools/list of 30
// tools for one caller, whose groups come as JSON decodes them: the
// go-sdk's own listing is left out (next hands over a prepared result).
func BenchmarkListFilter(b *testing.B) {
	r, all := benchRegistry()
	buf := make([]*mcp.Tool, len(all))
	res := &mcp.ListToolsResult{}
	h := r.middleware(func(context.Context, string, mcp.Request) (mcp.Result, error) {
		copy(buf, all)
		res.Tools = buf
		return res, nil
	})
	info := &auth.TokenInfo{UserID: "u", Scopes: []string{"r"}, Extra: map[string]any{authz.ExtraGroups: []any{"staff", "admins"}}}
	req := &mcp.ListToolsRequest{Params: &mcp.ListToolsParams{}, Extra: &mcp.RequestExtra{TokenInfo: info}}
	ctx := context.Background()
	for b.Loop() {
		out, err := h(ctx, "tools/list", req)
		if err != nil || len(out.(*mcp.ListToolsResult).Tools) != 20 {
			b.Fatalf("%v %v", out, err)
		}
	}
}

// BenchmarkCallDecision is the middleware's work on a tools/call of a
// tool with a predicate.
func BenchmarkCallDecision(b *testing.B) {
	r, _ := benchRegistry()
	res := &mcp.CallToolResult{}
	h := r.middleware(func(context.Context, string, mcp.Request) (mcp.Result, error) { return res, nil })
	info := &auth.TokenInfo{UserID: "u", Scopes: []string{"r"}, Extra: map[string]any{authz.ExtraGroups: []string{"admins"}}}
	req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "tool_02"}, Extra: &mcp.RequestExtra{TokenInfo: info}}
	ctx := context.Background()
	for b.Loop() {
		if _, err := h(ctx, "tools/call", req); err != nil {
			b.Fatal(err)
		}
	}
}
