package main

import (
	"context"
	"errors"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/cmd/remotemcp/fixtures"
)

// The server-wide handlers ask each feature in turn, and answer for what
// none handles: an empty completion, an unknown resource.
func TestHandlers(t *testing.T) {
	ctx := t.Context()
	errMine := errors.New("mine")
	var h handlers
	h.add(func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, bool, error) {
		return nil, req.Params.Ref.Name == "mine", errMine
	}, func(_ context.Context, req *mcp.SubscribeRequest) (bool, error) {
		return req.Params.URI == "mine://x", errMine
	})
	h.add(fixtures.Complete, fixtures.Subscribe)

	complete := func(name string) (*mcp.CompleteResult, error) {
		return h.complete(ctx, &mcp.CompleteRequest{Params: &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: name}}})
	}
	if _, err := complete("mine"); !errors.Is(err, errMine) {
		t.Errorf("complete(mine) = %v, want the first feature's answer", err)
	}
	for _, name := range []string{"test_prompt_with_arguments", "nobody's"} {
		r, err := complete(name)
		if err != nil || r == nil || r.Completion.Values == nil || len(r.Completion.Values) != 0 {
			t.Errorf("complete(%s) = %+v, %v; want an empty completion", name, r, err)
		}
	}

	subscribe := func(uri string) error {
		return h.subscribe(ctx, &mcp.SubscribeRequest{Params: &mcp.SubscribeParams{URI: uri}})
	}
	if err := subscribe("mine://x"); !errors.Is(err, errMine) {
		t.Errorf("subscribe(mine://x) = %v, want the first feature's answer", err)
	}
	if err := subscribe("test://watched-resource"); err != nil {
		t.Errorf("subscribe(test://watched-resource) = %v, want the fixtures to accept it", err)
	}
	if err := subscribe("other://x"); err == nil {
		t.Error("subscribe(other://x) succeeded; want resource not found")
	}
}
