package mcpserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/policy"
)

// stepUpRegistry: writing needs notes:write, reading notes needs
// notes:read, notes:write includes notes:read, and whoami is open;
// notes_purge needs notes:write and is for the group admins only.
func stepUpRegistry() *policy.Registry {
	s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	r := policy.New(s, &policy.Options{Implies: map[string][]string{"notes:write": {"notes:read"}}})
	noop := func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, struct{}, error) {
		return &mcp.CallToolResult{}, struct{}{}, nil
	}
	policy.AddTool(r, &mcp.Tool{Name: "notes_create"}, noop, policy.Need("notes:write"))
	policy.AddTool(r, &mcp.Tool{Name: "whoami"}, noop, policy.Open)
	policy.AddTool(r, &mcp.Tool{Name: "notes_purge"}, noop, policy.Need("notes:write").For(policy.Group("admins")))
	read := func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) { return nil, nil }
	r.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "notes://{id}", Name: "note"}, read, policy.Need("notes:read"))
	return r
}

const purgeBody = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes_purge","arguments":{}}}`

func TestCheckScopes(t *testing.T) {
	h := &Handler{opts: Options{Policy: stepUpRegistry(), MaxBodyBytes: DefaultMaxBodyBytes}}
	for _, tt := range []struct {
		name     string
		method   string
		scopes   []string
		groups   []string
		noAuth   bool // no token: --auth none
		body     string
		maxBody  int64
		wantNeed []string
		wantErr  bool
	}{
		{name: "create with a read-only token", scopes: []string{"notes:read"}, body: createBody, wantNeed: []string{"notes:write"}},
		{name: "create with no scope", body: createBody, wantNeed: []string{"notes:write"}},
		{name: "create with notes:write", scopes: []string{"notes:write"}, body: createBody},
		{name: "read with notes:read", scopes: []string{"notes:read"}, body: noteReadBody},
		{name: "read with only notes:write (hierarchy)", scopes: []string{"notes:write"}, body: noteReadBody},
		{name: "read with another scope", scopes: []string{"files:read"}, body: noteReadBody, wantNeed: []string{"notes:read"}},
		{name: "batch with no scope needs both", body: batchBody, wantNeed: []string{"notes:read", "notes:write"}},
		{name: "batch with read-only still needs both", scopes: []string{"notes:read"}, body: batchBody, wantNeed: []string{"notes:read", "notes:write"}},
		{name: "batch with notes:write", scopes: []string{"notes:write"}, body: batchBody},
		{name: "batch with both", scopes: []string{"notes:read", "notes:write"}, body: batchBody},
		{name: "batch with leading white space", body: " \n\t" + batchBody, wantNeed: []string{"notes:read", "notes:write"}},
		{name: "open tool", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}`},
		{name: "tool without a rule: left to the policy's middleware", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"other"}}`},
		{name: "resource outside every template", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"files://x"}}`},
		{name: "completion of the template", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"notes://{id}"},"argument":{"name":"id","value":"1"}}}`, wantNeed: []string{"notes:read"}},
		{name: "notification", body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
		{name: "response", body: `{"jsonrpc":"2.0","id":1,"result":{}}`},
		{name: "empty body", body: ``},
		{name: "GET is not checked", method: http.MethodGet, body: createBody},
		{name: "not JSON", body: `hello`, wantErr: true},
		// Bodies that the go-sdk reads as a notes_create call or a notes://
		// read: the check must not be bypassable by shaping the JSON.
		{name: "case-variant duplicate of params.name", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","NAME":"whoami","arguments":{"title":"t"}}}`, wantNeed: []string{"notes:write"}},
		{name: "case-variant duplicate of method", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","METHOD":"ping","params":{"name":"notes_create","arguments":{"title":"t"}}}`, wantNeed: []string{"notes:write"}},
		{name: "mistyped unknown sibling field", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","uri":1,"arguments":{"title":"t"}}}`, wantNeed: []string{"notes:write"}},
		{name: "mistyped ref beside the name", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_create","ref":"x","arguments":{"title":"t"}}}`, wantNeed: []string{"notes:write"}},
		{name: "params.name beside the resource uri", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x","uri":"notes://x"}}`, wantNeed: []string{"notes:read"}},
		{name: "params.name beside the completion ref", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"name":"x","ref":{"type":"ref/resource","uri":"notes://{id}"},"argument":{"name":"id","value":"1"}}}`, wantNeed: []string{"notes:read"}},
		// A predicate: more scope helps only the callers it admits.
		{name: "purge by an admin with a read-only token", scopes: []string{"notes:read"}, groups: []string{"admins"}, body: purgeBody, wantNeed: []string{"notes:write"}},
		{name: "purge by an admin with notes:write", scopes: []string{"notes:write"}, groups: []string{"staff", "admins"}, body: purgeBody},
		{name: "purge by another, read-only: no scope would help", scopes: []string{"notes:read"}, groups: []string{"staff"}, body: purgeBody},
		{name: "purge by another with notes:write: left to the middleware", scopes: []string{"notes:write"}, body: purgeBody},
		{name: "batch of another's purge and create needs only create's", scopes: []string{"notes:read"}, body: "[" + purgeBody + "," + createBody + "]", wantNeed: []string{"notes:write"}},
		// Without authentication scopes are not checked, and no predicate holds.
		{name: "create without authentication", noAuth: true, body: createBody},
		{name: "purge without authentication", noAuth: true, body: purgeBody},
		{name: "duplicate key", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name":"notes_create"}}`, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodPost
			if tt.method != "" {
				method = tt.method
			}
			req := httptest.NewRequest(method, "/mcp", strings.NewReader(tt.body))
			info := &auth.TokenInfo{UserID: "user-1", Scopes: tt.scopes, Extra: map[string]any{authz.ExtraGroups: tt.groups}}
			if tt.noAuth {
				info = nil
			}
			got, need, err := h.CheckScopes(req, info)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CheckScopes error = %v, want error: %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantNeed, need); diff != "" {
				t.Errorf("need (-want +got):\n%s", diff)
			}
			if got == nil {
				t.Fatal("CheckScopes returned no request")
			}
			// The body is read once: what follows reads it from the request.
			body, err := readBody(httptest.NewRecorder(), got, DefaultMaxBodyBytes)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.body, string(body)); diff != "" {
				t.Errorf("body passed on (-want +got):\n%s", diff)
			}
		})
	}
}
