package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/resource"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
	"github.com/remotemcp/remotemcp/policy"
	"github.com/remotemcp/remotemcp/prompts"
	"github.com/remotemcp/remotemcp/resources"
	"github.com/remotemcp/remotemcp/tools"
	notesmem "github.com/remotemcp/remotemcp/tools/notes/memstore"
)

// The tokens of the policy tests: each names a caller (subject, scopes,
// groups). alice-read and alice-write are one user before and after a
// step-up.
var policyTokens = map[string]*auth.TokenInfo{
	"guest":        {UserID: "guest"},
	"alice-read":   {UserID: "alice", Scopes: []string{"notes:read"}},
	"alice-write":  {UserID: "alice", Scopes: []string{"notes:write"}},
	"admin-read":   {UserID: "root", Scopes: []string{"notes:read"}, Extra: map[string]any{authz.ExtraGroups: []any{"staff", "admins"}}},
	"admin-write":  {UserID: "root", Scopes: []string{"notes:read", "notes:write"}, Extra: map[string]any{authz.ExtraGroups: []string{"admins"}}},
	"staff-writer": {UserID: "bob", Scopes: []string{"notes:write"}, Extra: map[string]any{authz.ExtraGroups: []string{"staff"}}},
}

// servePolicy serves the notes product (its tools, resources and prompts as
// they register) plus two tools for the group admins only, admin_report
// (notes:read) and admin_purge (notes:write), behind the bearer middleware
// that asks the endpoint's CheckScopes, as the binary does.
func servePolicy(t *testing.T) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1"}, &mcp.ServerOptions{SupportedProtocolVersions: mcpserver.SupportedVersions})
	reg := policy.New(s, &policy.Options{Implies: map[string][]string{"notes:write": {"notes:read"}}})
	stores := memstore.New(nil)
	notes := notesmem.New(nil)
	tools.Register(reg, tools.Deps{Notes: notes, Exports: notes, Notifier: mcpserver.NewNotifier(stores.Broadcaster),
		Sealer: mcpserver.NewStateSealer([]byte("0123456789abcdef0123456789abcdef"), 0)})
	resources.Register(reg, notes, notes, "notes:read")
	prompts.Register(reg, notes, "notes:read")
	admins := policy.Group("admins")
	report := func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, struct{}, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "report for " + req.Extra.TokenInfo.UserID}}}, struct{}{}, nil
	}
	policy.AddTool(reg, &mcp.Tool{Name: "admin_report"}, report, policy.Need("notes:read").For(admins))
	policy.AddTool(reg, &mcp.Tool{Name: "admin_purge"}, report, policy.Need("notes:write").For(admins))
	if err := reg.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}

	h := mcpserver.NewHandler(s, stores, &mcpserver.Options{Policy: reg})
	verify := func(_ context.Context, token string) (*auth.TokenInfo, error) {
		info, ok := policyTokens[token]
		if !ok {
			return nil, fmt.Errorf("%w: unknown test token", authz.ErrInvalidToken)
		}
		c := *info
		c.Expiration = time.Now().Add(time.Hour)
		return &c, nil
	}
	srv := httptest.NewServer(resource.RequireBearer(verify, &resource.BearerOptions{
		ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource",
		Scopes:              []string{"notes:read"},
		CheckScopes:         h.CheckScopes,
	})(h))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { h.Close() })
	return srv.URL
}

// An era sends requests in one protocol era: stateless, or in a legacy
// session that it opens for the subject of the first token it is given.
type era struct {
	name   string
	legacy bool
}

var eras = []era{{name: "2026-07-28"}, {name: "2025-11-25 session", legacy: true}}

// caller is one caller's view of the endpoint in an era.
type caller struct {
	t       *testing.T
	url     string
	era     era
	token   string
	session string
	id      int
}

func (e era) caller(t *testing.T, url, token string) *caller {
	c := &caller{t: t, url: url, era: e, token: token, id: 1}
	if e.legacy {
		c.session = initialize(t, url, token, mcpserver.Version20251125, "{}")
	}
	return c
}

// post sends method with params (a JSON object) and returns the response.
func (c *caller) post(method, params string) *http.Response {
	c.t.Helper()
	c.id++
	if c.era.legacy {
		return do(c.t, c.url, request{token: c.token, version: mcpserver.Version20251125, session: c.session, body: callBody(c.id, method, params)})
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(params), "{"), "}")
	if inner != "" {
		inner = "," + inner
	}
	var p struct{ Name string }
	json.Unmarshal([]byte(params), &p)
	return do(c.t, c.url, request{token: c.token, version: mcpserver.Version20260728, body: modernBody(method, mcpserver.Version20260728, inner),
		edit: func(r *http.Request) {
			r.Header.Set("Mcp-Method", method)
			if p.Name != "" {
				r.Header.Set("Mcp-Name", p.Name)
			}
		}})
}

// call sends method and returns every message of the answer (an SSE
// stream or one JSON message), failing on a status other than 200.
func (c *caller) call(method, params string) []message {
	c.t.Helper()
	resp := c.post(method, params)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s as %s: status %d: %s", method, c.token, resp.StatusCode, readBody(c.t, resp))
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return messages(c.t, readEvents(c.t, resp))
	}
	return []message{decodeMessage(c.t, readBody(c.t, resp))}
}

// names returns the names (or URIs, for resources) a list method lists.
func (c *caller) names(method string) []string {
	c.t.Helper()
	msgs := c.call(method, "{}")
	last := msgs[len(msgs)-1]
	if last.Error != nil {
		c.t.Fatalf("%s as %s: %s", method, c.token, last.Error.Message)
	}
	var res map[string]json.RawMessage
	if err := json.Unmarshal(last.Result, &res); err != nil {
		c.t.Fatal(err)
	}
	var items []struct{ Name, URI, URITemplate string }
	key := map[string]string{"tools/list": "tools", "prompts/list": "prompts", "resources/list": "resources", "resources/templates/list": "resourceTemplates"}[method]
	if err := json.Unmarshal(res[key], &items); err != nil {
		c.t.Fatalf("%s: %s: %v", method, last.Result, err)
	}
	out := []string{}
	for _, it := range items {
		out = append(out, it.Name)
	}
	slices.Sort(out)
	return out
}

// TestListsPerCaller: each caller's lists hold what they may use and
// nothing else, in both eras: a read-only token sees no write tool, a
// token with no scope only what is open, and the admins' tools only
// their group.
func TestListsPerCaller(t *testing.T) {
	url := servePolicy(t)
	read := []string{"export_notes", "notes_get", "notes_search", "whoami"}
	write := []string{"export_notes", "notes_create", "notes_delete", "notes_get", "notes_search", "whoami"}
	for _, e := range eras {
		t.Run(e.name, func(t *testing.T) {
			for _, tt := range []struct {
				token                     string
				tools, prompts, templates []string
			}{
				{token: "guest", tools: []string{"whoami"}, prompts: []string{}, templates: []string{}},
				{token: "alice-read", tools: read, prompts: []string{"draft_note", "summarize_notes"}, templates: []string{"note", "notes-export"}},
				{token: "alice-write", tools: write, prompts: []string{"draft_note", "summarize_notes"}, templates: []string{"note", "notes-export"}},
				{token: "staff-writer", tools: write, prompts: []string{"draft_note", "summarize_notes"}, templates: []string{"note", "notes-export"}},
				{token: "admin-read", tools: append([]string{"admin_report"}, read...), prompts: []string{"draft_note", "summarize_notes"}, templates: []string{"note", "notes-export"}},
				{token: "admin-write", tools: append([]string{"admin_purge", "admin_report"}, write...), prompts: []string{"draft_note", "summarize_notes"}, templates: []string{"note", "notes-export"}},
			} {
				t.Run(tt.token, func(t *testing.T) {
					c := e.caller(t, url, tt.token)
					if diff := cmp.Diff(tt.tools, c.names("tools/list")); diff != "" {
						t.Errorf("tools/list (-want +got):\n%s", diff)
					}
					if diff := cmp.Diff(tt.prompts, c.names("prompts/list")); diff != "" {
						t.Errorf("prompts/list (-want +got):\n%s", diff)
					}
					if diff := cmp.Diff(tt.templates, c.names("resources/templates/list")); diff != "" {
						t.Errorf("resources/templates/list (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// TestListIsPrivate: a list given to an authenticated caller is theirs, so
// it is marked cacheScope private (2026-07-28).
func TestListIsPrivate(t *testing.T) {
	c := eras[0].caller(t, servePolicy(t), "alice-read")
	for _, method := range []string{"tools/list", "prompts/list", "resources/list", "resources/templates/list"} {
		msgs := c.call(method, "{}")
		var res struct{ CacheScope string }
		if err := json.Unmarshal(msgs[len(msgs)-1].Result, &res); err != nil || res.CacheScope != "private" {
			t.Errorf("%s: cacheScope %q (%v), want private", method, res.CacheScope, err)
		}
	}
}

// TestHiddenToolsAreUnknown: a caller outside the admins group cannot call
// their tools, whatever the scopes of the token: the answer is the go-sdk's
// own error for a tool that does not exist, with no step-up challenge, in
// both eras. The admins can call them.
func TestHiddenToolsAreUnknown(t *testing.T) {
	url := servePolicy(t)
	for _, e := range eras {
		t.Run(e.name, func(t *testing.T) {
			for _, token := range []string{"guest", "alice-read", "alice-write", "staff-writer"} {
				c := e.caller(t, url, token)
				for _, name := range []string{"admin_report", "admin_purge"} {
					got := c.post("tools/call", `{"name":"`+name+`","arguments":{}}`)
					want := c.post("tools/call", `{"name":"no_`+name+`","arguments":{}}`)
					g, w := lastMessage(t, got).Error, lastMessage(t, want).Error
					if g == nil || w == nil {
						t.Fatalf("%s calling %s: %+v; a nonexistent tool: %+v; want errors", token, name, g, w)
					}
					if got.StatusCode != want.StatusCode || g.Code != w.Code || g.Message != strings.Replace(w.Message, "no_", "", 1) {
						t.Errorf("%s calling %s: %d %d %q; want what a nonexistent tool gets: %d %d %q",
							token, name, got.StatusCode, g.Code, g.Message, want.StatusCode, w.Code, w.Message)
					}
					if www := got.Header.Get("WWW-Authenticate"); www != "" {
						t.Errorf("%s calling %s: challenged with %q; no scope would help", token, name, www)
					}
				}
			}
			admin := e.caller(t, url, "admin-write")
			for _, name := range []string{"admin_report", "admin_purge"} {
				msgs := admin.call("tools/call", `{"name":"`+name+`","arguments":{}}`)
				if got := toolText(t, msgs[len(msgs)-1]); got != "report for root" {
					t.Errorf("admin calling %s: %q", name, got)
				}
			}
		})
	}
}

// TestStepUpOnlyWhenScopeHelps: a caller whose token lacks a scope that
// would let them use an item gets the 403 insufficient_scope challenge
// naming it, in both eras, whether or not the item also has a predicate
// (which they satisfy); a caller the predicate refuses does not (see
// TestHiddenToolsAreUnknown).
func TestStepUpOnlyWhenScopeHelps(t *testing.T) {
	url := servePolicy(t)
	for _, e := range eras {
		t.Run(e.name, func(t *testing.T) {
			for _, tt := range []struct {
				token, tool, scope string
			}{
				{"alice-read", "notes_create", "notes:write"},
				{"guest", "notes_search", "notes:read"},
				{"admin-read", "admin_purge", "notes:write"},
			} {
				c := e.caller(t, url, tt.token)
				resp := c.post("tools/call", `{"name":"`+tt.tool+`","arguments":{}}`)
				body := readBody(t, resp)
				www := resp.Header.Get("WWW-Authenticate")
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(www, `error="insufficient_scope"`) || !strings.Contains(www, `scope="`+tt.scope+`"`) {
					t.Errorf("%s calling %s: %d %q %s; want 403 insufficient_scope for %s", tt.token, tt.tool, resp.StatusCode, www, body, tt.scope)
				}
			}
		})
	}
}

// methods returns the methods of the notifications among msgs.
func methods(msgs []message) []string {
	var out []string
	for _, m := range msgs {
		if m.Method != "" {
			out = append(out, m.Method)
		}
	}
	return out
}

var listChangedAll = []string{"notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"}

// TestStepUpChangesTheList is the documented behaviour of a step-up (or
// any change of the token's scopes or groups): the next list, with the
// new token, shows what it allows. A legacy session, which is bound to
// the subject and not to the token, goes on across the change, and the
// first request with the new token gets the three list_changed
// notifications before its response, and only that request: a token with
// the same scopes and groups (a refresh) tells nothing. In the stateless
// revision there is no session to tell: nothing is sent.
func TestStepUpChangesTheList(t *testing.T) {
	url := servePolicy(t)
	for _, e := range eras {
		t.Run(e.name, func(t *testing.T) {
			c := e.caller(t, url, "alice-read")
			if got := c.names("tools/list"); slices.Contains(got, "notes_create") {
				t.Fatalf("read-only tools/list: %v", got)
			}
			if got := methods(c.call("tools/call", `{"name":"whoami","arguments":{}}`)); len(got) != 0 {
				t.Errorf("notifications with an unchanged token: %q", got)
			}
			c.token = "alice-write" // the same user after a step-up
			msgs := c.call("tools/call", `{"name":"notes_create","arguments":{"title":"t","body":"b"}}`)
			var want []string
			if e.legacy {
				want = listChangedAll
			}
			if diff := cmp.Diff(want, methods(msgs)); diff != "" {
				t.Errorf("notifications of the first request after the step-up (-want +got):\n%s", diff)
			}
			if m := msgs[len(msgs)-1]; m.Error != nil || m.Result == nil {
				t.Errorf("the call after the step-up: %+v", m)
			}
			if got := c.names("tools/list"); !slices.Contains(got, "notes_create") {
				t.Errorf("tools/list after the step-up: %v; want notes_create", got)
			}
			if got := methods(c.call("tools/call", `{"name":"whoami","arguments":{}}`)); len(got) != 0 {
				t.Errorf("notifications of a later request: %q; want none", got)
			}
			c.token = "alice-read" // and back: a narrower token is a change too
			if diff := cmp.Diff(want, methods(c.call("tools/call", `{"name":"whoami","arguments":{}}`))); diff != "" {
				t.Errorf("notifications after narrowing (-want +got):\n%s", diff)
			}
		})
	}
}
