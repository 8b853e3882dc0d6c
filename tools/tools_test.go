package tools_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/tools"
	"github.com/remotemcp/remotemcp/tools/notes"
	"github.com/remotemcp/remotemcp/tools/notes/memstore"
)

func TestMatch(t *testing.T) {
	all := []*notes.Note{
		{ID: "a", Title: "Groceries", Body: "milk and eggs", Tags: []string{"home"}},
		{ID: "b", Title: "Standup", Body: "release notes", Tags: []string{"work"}},
		{ID: "c", Title: "Milk prices", Body: "", Tags: []string{"home", "money"}},
	}
	for _, tt := range []struct {
		name, query, tag string
		want             []string
	}{
		{"everything", "", "", []string{"a", "b", "c"}},
		{"one word in body or title", "milk", "", []string{"a", "c"}},
		{"case-insensitive, every word", "MILK eggs", "", []string{"a"}},
		{"tag filter", "", "work", []string{"b"}},
		{"tag is normalized", "", " HOME ", []string{"a", "c"}},
		{"words match tags", "money", "", []string{"c"}},
		{"nothing", "zebra", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, n := range tools.Match(all, tt.query, tt.tag) {
				got = append(got, n.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Match(%q, %q) (-want +got):\n%s", tt.query, tt.tag, diff)
			}
		})
	}
}

type recordingNotifier struct{ uris []string }

func (r *recordingNotifier) ResourceUpdated(_ context.Context, owner, uri string) error {
	r.uris = append(r.uris, owner+" "+uri)
	return nil
}

// TestScopesAndNotifications: every notes tool declares a scope, configured
// names are used, and changes are announced on the right URIs.
func TestScopesAndNotifications(t *testing.T) {
	store := memstore.New(nil)
	n := &recordingNotifier{}
	s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	reg := policy.New(s, nil)
	tools.Register(reg, tools.Deps{Notes: store, Exports: store, Notifier: n, Sealer: plainSealer{},
		Scopes: tools.Scopes{Read: "Notes.Read", Write: "Notes.Write"}, ExportPace: time.Millisecond})
	want := map[string]policy.Access{
		"notes_create": policy.Need("Notes.Write"), "notes_delete": policy.Need("Notes.Write"),
		"notes_search": policy.Need("Notes.Read"), "notes_get": policy.Need("Notes.Read"), "export_notes": policy.Need("Notes.Read"),
		"whoami": policy.Open,
	}
	scopes := map[string]policy.Access{}
	for name := range want {
		if a, ok := reg.Lookup("tools/call", name); ok {
			scopes[name] = a
		}
	}
	if diff := cmp.Diff(want, scopes); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
	cs, done, err := connect(s)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	ctx := context.Background()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes_create", Arguments: map[string]any{"title": "x"}})
	if err != nil || res.IsError {
		t.Fatalf("create: %v %v", err, res)
	}
	id := res.StructuredContent.(map[string]any)["id"].(string)
	// No elicitation on this client: confirm: true is the way through.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes_delete", Arguments: map[string]any{"id": id}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, `"confirm": true`) {
		t.Fatalf("delete without confirmation: %v %+v", err, res)
	}
	if res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes_delete", Arguments: map[string]any{"id": id, "confirm": true}}); err != nil || res.IsError {
		t.Fatalf("delete with confirm: %v %v", err, res)
	}
	wantURIs := []string{"anonymous notes://index", "anonymous notes://" + id, "anonymous notes://index"}
	if !slices.Equal(n.uris, wantURIs) {
		t.Errorf("notifications %v, want %v", n.uris, wantURIs)
	}
}

// TestCreateLimits: notes_create past a user's limits is a tool error that
// names the limit and what to do.
func TestCreateLimits(t *testing.T) {
	limits := notes.Limits{Notes: 2, Bytes: 100}
	store := memstore.New(&memstore.Options{Limits: limits})
	s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	tools.Register(policy.New(s, nil), tools.Deps{Notes: store, Exports: store, Notifier: &recordingNotifier{}, Sealer: plainSealer{}, Limits: limits})
	cs, done, err := connect(s)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	create := func(title, body string) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "notes_create", Arguments: map[string]any{"title": title, "body": body}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	text := func(res *mcp.CallToolResult) string { return res.Content[0].(*mcp.TextContent).Text }
	if res := create("a", strings.Repeat("x", 100)); !res.IsError || !strings.Contains(text(res), "more than 100 bytes") || !strings.Contains(text(res), "delete") {
		t.Errorf("a note past the bytes limit: %+v, want a tool error naming 100 bytes and what to do", text(res))
	}
	for _, title := range []string{"a", "b"} {
		if res := create(title, ""); res.IsError {
			t.Fatalf("create %s: %s", title, text(res))
		}
	}
	if res := create("c", ""); !res.IsError || !strings.Contains(text(res), "already have 2 notes") || !strings.Contains(text(res), "notes_delete") {
		t.Errorf("a third note with a limit of 2: %q, want a tool error naming the limit and notes_delete", text(res))
	}
}

// downStore is a store that cannot be reached.
type downStore struct{}

var errDown = fmt.Errorf("redis: read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout: %w", notes.ErrUnavailable)

func (downStore) Put(context.Context, *notes.Note) error                   { return errDown }
func (downStore) Get(context.Context, string, string) (*notes.Note, error) { return nil, errDown }
func (downStore) List(context.Context, string) ([]*notes.Note, error)      { return nil, errDown }
func (downStore) Delete(context.Context, string, string) error             { return errDown }
func (downStore) PutExport(context.Context, *notes.Export) error           { return errDown }
func (downStore) GetExport(context.Context, string, string) (*notes.Export, error) {
	return nil, errDown
}

// TestStoreUnavailablePassesThrough: every tool hands a store's
// notes.ErrUnavailable on as its result's error (which the MCP layer turns
// into a 503), never rewords it into a message that loses it.
func TestStoreUnavailablePassesThrough(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	tools.Register(policy.New(s, nil), tools.Deps{Notes: downStore{}, Exports: downStore{}, Notifier: &recordingNotifier{}, Sealer: plainSealer{}})
	var got error
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			res, err := next(ctx, method, req)
			if r, ok := res.(*mcp.CallToolResult); ok && r != nil {
				got = r.GetError()
			}
			return res, err
		}
	})
	cs, done, err := connect(s)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	for name, args := range map[string]map[string]any{
		"notes_create": {"title": "x"},
		"notes_search": {},
		"notes_get":    {"id": "abc"},
		"notes_delete": {"id": "abc", "confirm": true},
		"export_notes": {},
	} {
		got = nil
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !res.IsError || !errors.Is(got, notes.ErrUnavailable) {
			t.Errorf("%s: isError %v, error %v; want the store's ErrUnavailable", name, res.IsError, got)
		}
	}
}
