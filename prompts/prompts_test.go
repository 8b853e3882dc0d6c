package prompts_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/prompts"
	"github.com/remotemcp/remotemcp/tools/notes"
	"github.com/remotemcp/remotemcp/tools/notes/memstore"
)

func setup(t *testing.T, titles ...string) (*prompts.Prompts, *mcp.ClientSession) {
	t.Helper()
	ctx := context.Background()
	store := memstore.New(nil)
	for i, title := range titles {
		at := time.Unix(int64(1000-i), 0) // first title is the most recent
		store.Put(ctx, &notes.Note{ID: fmt.Sprint("n", i), Owner: notes.Anonymous, Title: title, Body: "body of " + title, Tags: []string{"t"}, CreatedAt: at, UpdatedAt: at})
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "p", Version: "1"}, &mcp.ServerOptions{})
	reg := policy.New(s, nil)
	p := prompts.Register(reg, store, "custom:read")
	for _, name := range []string{"summarize_notes", "draft_note"} {
		if a, ok := reg.Lookup("prompts/get", name); !ok || !slices.Equal(a.Scopes, []string{"custom:read"}) {
			t.Errorf("%s needs %v (known %v), want custom:read", name, a, ok)
		}
	}
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); ss.Close() })
	return p, cs
}

func TestComplete(t *testing.T) {
	p, _ := setup(t, "Groceries", "Garden plan", "Big groceries run", "groceries")
	for _, tt := range []struct {
		name, prompt, arg, value string
		handled                  bool
		want                     []string
	}{
		{"prefix first, then contains, case-insensitive, deduplicated", "draft_note", "topic", "GRO", true, []string{"Groceries", "Big groceries run"}},
		{"empty value lists all", "draft_note", "topic", "", true, []string{"Groceries", "Garden plan", "Big groceries run"}},
		{"no match", "draft_note", "topic", "zzz", true, nil},
		{"other argument", "draft_note", "other", "g", false, nil},
		{"other prompt", "summarize_notes", "tag", "g", false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, handled, err := p.Complete(context.Background(), &mcp.CompleteRequest{Params: &mcp.CompleteParams{
				Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: tt.prompt},
				Argument: mcp.CompleteParamsArgument{Name: tt.arg, Value: tt.value},
			}})
			if err != nil || handled != tt.handled {
				t.Fatalf("Complete: handled %v, err %v; want handled %v", handled, err, tt.handled)
			}
			if !handled {
				return
			}
			if diff := cmp.Diff(tt.want, res.Completion.Values); diff != "" && !(len(tt.want) == 0 && len(res.Completion.Values) == 0) {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGetPrompts(t *testing.T) {
	_, cs := setup(t, "Groceries", "Garden plan")
	get := func(name string, args map[string]string) (string, error) {
		res, err := cs.GetPrompt(context.Background(), &mcp.GetPromptParams{Name: name, Arguments: args})
		if err != nil {
			return "", err
		}
		return res.Messages[0].Content.(*mcp.TextContent).Text, nil
	}
	text, err := get("summarize_notes", nil)
	if err != nil || !strings.Contains(text, "## Groceries (notes://n0)\nbody of Groceries") || !strings.Contains(text, "## Garden plan") {
		t.Errorf("summarize_notes = %q, %v", text, err)
	}
	text, err = get("summarize_notes", map[string]string{"tag": "nope"})
	if err != nil || !strings.Contains(text, `No note has the tag "nope"`) {
		t.Errorf("summarize_notes{tag: nope} = %q, %v", text, err)
	}
	text, err = get("draft_note", map[string]string{"topic": "garden"})
	if err != nil || !strings.Contains(text, `about "garden"`) || !strings.Contains(text, "## Garden plan") || strings.Contains(text, "## Groceries") {
		t.Errorf("draft_note{garden} = %q, %v", text, err)
	}
	if _, err := get("draft_note", map[string]string{"topic": "  "}); err == nil {
		t.Error("draft_note without a topic succeeded")
	}
}
