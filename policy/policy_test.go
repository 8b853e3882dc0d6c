package policy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/policy"
)

type empty struct{}

func noopTool(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, empty, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ran"}}}, empty{}, nil
}

func noopPrompt(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	return &mcp.GetPromptResult{}, nil
}

func noopResource(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "x"}}}, nil
}

func newServer() *mcp.Server {
	return mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil)
}

func TestRegistrationWithoutAccessPanics(t *testing.T) {
	for _, tt := range []struct {
		name string
		add  func(r *policy.Registry)
	}{
		{"tool with no access", func(r *policy.Registry) { policy.AddTool(r, &mcp.Tool{Name: "a"}, noopTool, policy.Access{}) }},
		{"tool both open and scoped", func(r *policy.Registry) {
			policy.AddTool(r, &mcp.Tool{Name: "a"}, noopTool, policy.Access{Open: true, Scopes: []string{"s"}})
		}},
		{"tool with an empty scope", func(r *policy.Registry) { policy.AddTool(r, &mcp.Tool{Name: "a"}, noopTool, policy.Need("")) }},
		{"raw tool", func(r *policy.Registry) {
			r.AddTool(&mcp.Tool{Name: "a", InputSchema: map[string]any{"type": "object"}}, nil, policy.Need())
		}},
		{"prompt", func(r *policy.Registry) { r.AddPrompt(&mcp.Prompt{Name: "p"}, noopPrompt, policy.Access{}) }},
		{"resource", func(r *policy.Registry) {
			r.AddResource(&mcp.Resource{URI: "x://a", Name: "a"}, noopResource, policy.Access{})
		}},
		{"template", func(r *policy.Registry) {
			r.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "x://{id}", Name: "a"}, noopResource, policy.Access{})
		}},
		{"method", func(r *policy.Registry) { r.Method("subscriptions/listen", policy.Access{}) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				if s, _ := v.(string); !strings.HasPrefix(s, "policy: ") {
					t.Errorf("recovered %v, want a panic prefixed with \"policy: \"", v)
				}
			}()
			tt.add(policy.New(newServer(), nil))
		})
	}
}

func TestLookup(t *testing.T) {
	r := policy.New(newServer(), nil)
	policy.AddTool(r, &mcp.Tool{Name: "write"}, noopTool, policy.Need("w"))
	policy.AddTool(r, &mcp.Tool{Name: "open"}, noopTool, policy.Open)
	r.AddPrompt(&mcp.Prompt{Name: "p"}, noopPrompt, policy.Need("p"))
	r.AddResource(&mcp.Resource{URI: "notes://index", Name: "index"}, noopResource, policy.Need("index"))
	r.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "notes://{id}", Name: "note"}, noopResource, policy.Need("note"))
	r.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "notes://exports/{id}", Name: "export"}, noopResource, policy.Need("export"))
	r.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "{scheme}://{path}", Name: "any"}, noopResource, policy.Need("any"))
	r.Method("subscriptions/listen", policy.Need("listen"))
	for _, tt := range []struct {
		method, name string
		want         []string // nil: Open
		unknown      bool
	}{
		{method: "tools/call", name: "write", want: []string{"w"}},
		{method: "tools/call", name: "open"},
		{method: "tools/call", name: "other", unknown: true},
		{method: "tools/call", name: "", unknown: true},
		{method: "prompts/get", name: "p", want: []string{"p"}},
		{method: "prompts/get", name: "write", unknown: true},
		{method: "completion/complete", name: "p", want: []string{"p"}},
		// Exact resource before any template.
		{method: "resources/read", name: "notes://index", want: []string{"index"}},
		// The longest literal prefix wins, whatever the order of registration.
		{method: "resources/read", name: "notes://exports/e1", want: []string{"export"}},
		{method: "resources/read", name: "notes://n1", want: []string{"note"}},
		{method: "resources/subscribe", name: "notes://n1", want: []string{"note"}},
		{method: "resources/read", name: "files://x", want: []string{"any"}},
		// A completion reference names the template itself.
		{method: "completion/complete", name: "notes://exports/{id}", want: []string{"export"}},
		{method: "completion/complete", name: "nothing", unknown: true},
		{method: "subscriptions/listen", want: []string{"listen"}},
		{method: "tools/list"},
		{method: "initialize"},
	} {
		a, known := r.Lookup(tt.method, tt.name)
		if known == tt.unknown {
			t.Errorf("Lookup(%q, %q) known = %v", tt.method, tt.name, known)
			continue
		}
		if tt.unknown {
			continue
		}
		if diff := cmp.Diff(tt.want, a.Scopes); diff != "" || a.Open != (tt.want == nil) {
			t.Errorf("Lookup(%q, %q) = %+v (-want +got scopes):\n%s", tt.method, tt.name, a, diff)
		}
	}
}

// TestLookupDeterministic registers templates with equal literal prefixes
// in both orders: the template string breaks the tie the same way.
func TestLookupDeterministic(t *testing.T) {
	for _, order := range [][]string{{"x://{a}", "x://{b}"}, {"x://{b}", "x://{a}"}} {
		r := policy.New(newServer(), nil)
		for _, tmpl := range order {
			r.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: tmpl, Name: tmpl}, noopResource, policy.Need(tmpl))
		}
		if a, _ := r.Lookup("resources/read", "x://1"); !cmp.Equal(a.Scopes, []string{"x://{a}"}) {
			t.Errorf("registered %v: x://1 needs %v, want x://{a}'s scope", order, a.Scopes)
		}
	}
}

func TestSatisfied(t *testing.T) {
	r := policy.New(newServer(), &policy.Options{Implies: map[string][]string{
		"notes:write": {"notes:read"},
		"admin":       {"notes:write", "users:read"},
		"a":           {"b"},
		"b":           {"c", "a"}, // a cycle: a ⇒ b ⇒ a
		"self":        {"self"},
	}})
	for _, tt := range []struct {
		name    string
		granted []string
		need    []string
		want    bool
	}{
		{name: "nothing needed, nothing granted", want: true},
		{name: "nothing needed", granted: []string{"notes:read"}, want: true},
		{name: "exact", granted: []string{"notes:read"}, need: []string{"notes:read"}, want: true},
		{name: "missing", granted: []string{"notes:read"}, need: []string{"notes:write"}, want: false},
		{name: "nothing granted", need: []string{"notes:read"}, want: false},
		{name: "implied", granted: []string{"notes:write"}, need: []string{"notes:read"}, want: true},
		{name: "implied and direct together", granted: []string{"notes:write"}, need: []string{"notes:read", "notes:write"}, want: true},
		{name: "the hierarchy does not go upward", granted: []string{"notes:read"}, need: []string{"notes:read", "notes:write"}, want: false},
		{name: "transitive", granted: []string{"admin"}, need: []string{"notes:read", "users:read"}, want: true},
		{name: "cycle terminates forward", granted: []string{"a"}, need: []string{"c"}, want: true},
		{name: "cycle terminates backward", granted: []string{"b"}, need: []string{"a"}, want: true},
		{name: "cycle grants nothing outside it", granted: []string{"a"}, need: []string{"notes:read"}, want: false},
		{name: "self-loop", granted: []string{"self"}, need: []string{"self"}, want: true},
		{name: "all needed scopes are required", granted: []string{"users:read"}, need: []string{"users:read", "notes:read"}, want: false},
		{name: "scopes are case-sensitive", granted: []string{"NOTES:WRITE"}, need: []string{"notes:read"}, want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := policy.Open
			if len(tt.need) > 0 {
				a = policy.Need(tt.need...)
			}
			if got := r.Satisfied(tt.granted, a); got != tt.want {
				t.Errorf("Satisfied(%q, %q) = %v, want %v", tt.granted, tt.need, got, tt.want)
			}
		})
	}
}

func TestSatisfiedWithoutHierarchy(t *testing.T) {
	r := policy.New(newServer(), nil)
	if !r.Satisfied([]string{"x"}, policy.Need("x")) {
		t.Error("Satisfied([x], [x]) = false with no hierarchy, want true")
	}
	if r.Satisfied([]string{"notes:write"}, policy.Need("notes:read")) {
		t.Error("Satisfied([notes:write], [notes:read]) = true with no hierarchy, want false")
	}
}

// TestDenyByDefault: an item added to the server directly, bypassing the
// Registry, is absent from every list and answers as an unknown item.
func TestDenyByDefault(t *testing.T) {
	ctx := context.Background()
	s := newServer()
	r := policy.New(s, nil)
	policy.AddTool(r, &mcp.Tool{Name: "listed"}, noopTool, policy.Open)
	mcp.AddTool(s, &mcp.Tool{Name: "sneaky"}, noopTool)
	r.AddPrompt(&mcp.Prompt{Name: "listed"}, noopPrompt, policy.Open)
	s.AddPrompt(&mcp.Prompt{Name: "sneaky"}, noopPrompt)
	r.AddResource(&mcp.Resource{URI: "x://listed", Name: "listed"}, noopResource, policy.Open)
	s.AddResource(&mcp.Resource{URI: "x://sneaky", Name: "sneaky"}, noopResource)
	r.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "x://listed/{id}", Name: "listed"}, noopResource, policy.Open)
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "y://sneaky/{id}", Name: "sneaky"}, noopResource)

	if err := r.Verify(ctx); err == nil || !strings.Contains(err.Error(), `tool "sneaky"`) ||
		!strings.Contains(err.Error(), `prompt "sneaky"`) || !strings.Contains(err.Error(), `resource "x://sneaky"`) ||
		!strings.Contains(err.Error(), `resource template "y://sneaky/{id}"`) {
		t.Errorf("Verify = %v, want every sneaky item named", err)
	}

	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 1 || tools.Tools[0].Name != "listed" {
		t.Errorf("tools/list = %v, %v; want only listed", tools, err)
	}
	prompts, err := cs.ListPrompts(ctx, nil)
	if err != nil || len(prompts.Prompts) != 1 || prompts.Prompts[0].Name != "listed" {
		t.Errorf("prompts/list = %v, %v; want only listed", prompts, err)
	}
	res, err := cs.ListResources(ctx, nil)
	if err != nil || len(res.Resources) != 1 || res.Resources[0].URI != "x://listed" {
		t.Errorf("resources/list = %v, %v; want only x://listed", res, err)
	}
	tmpls, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil || len(tmpls.ResourceTemplates) != 1 || tmpls.ResourceTemplates[0].Name != "listed" {
		t.Errorf("resources/templates/list = %v, %v; want only listed", tmpls, err)
	}

	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "listed"}); err != nil || res.IsError {
		t.Errorf("calling the listed tool: %v %v", res, err)
	}
	var rpcErr *jsonrpc.Error
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "sneaky"}); !errors.As(err, &rpcErr) || rpcErr.Code != jsonrpc.CodeInvalidParams || !strings.Contains(rpcErr.Message, `unknown tool "sneaky"`) {
		t.Errorf("calling the sneaky tool: %v, want the unknown-tool error", err)
	}
	if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "sneaky"}); !errors.As(err, &rpcErr) || !strings.Contains(rpcErr.Message, `unknown prompt "sneaky"`) {
		t.Errorf("getting the sneaky prompt: %v, want the unknown-prompt error", err)
	}
	for _, uri := range []string{"x://sneaky", "y://sneaky/1"} {
		if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri}); !errors.As(err, &rpcErr) || rpcErr.Message != "Resource not found" {
			t.Errorf("reading %s: %v, want resource not found", uri, err)
		}
	}
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "x://listed/1"}); err != nil {
		t.Errorf("reading a listed template's resource: %v", err)
	}
}

// TestVerifyAllRegistered: with every item registered through the
// Registry, Verify finds nothing.
func TestVerifyAllRegistered(t *testing.T) {
	r := policy.New(newServer(), nil)
	policy.AddTool(r, &mcp.Tool{Name: "a"}, noopTool, policy.Open)
	r.AddPrompt(&mcp.Prompt{Name: "p"}, noopPrompt, policy.Need("s"))
	r.AddResource(&mcp.Resource{URI: "x://a", Name: "a"}, noopResource, policy.Need("s"))
	r.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "x://{id}", Name: "t"}, noopResource, policy.Need("s"))
	if err := r.Verify(context.Background()); err != nil {
		t.Errorf("Verify = %v", err)
	}
}

// TestCompletionOfUnregisteredRef: completing an argument of an item
// without a rule gets no values, whatever the server-wide handler knows.
func TestCompletionOfUnregisteredRef(t *testing.T) {
	ctx := context.Background()
	s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, &mcp.ServerOptions{
		CompletionHandler: func(context.Context, *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{"secret"}}}, nil
		},
	})
	r := policy.New(s, nil)
	r.AddPrompt(&mcp.Prompt{Name: "listed", Arguments: []*mcp.PromptArgument{{Name: "a"}}}, noopPrompt, policy.Open)
	s.AddPrompt(&mcp.Prompt{Name: "sneaky", Arguments: []*mcp.PromptArgument{{Name: "a"}}}, noopPrompt)
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for prompt, want := range map[string][]string{"listed": {"secret"}, "sneaky": {}} {
		res, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: prompt}, Argument: mcp.CompleteParamsArgument{Name: "a", Value: "s"}})
		if err != nil {
			t.Fatalf("complete %s: %v", prompt, err)
		}
		if diff := cmp.Diff(want, res.Completion.Values); diff != "" {
			t.Errorf("completing %s (-want +got):\n%s", prompt, diff)
		}
	}
}

// serveWithTokens serves s statelessly over HTTP behind the go-sdk's bearer
// middleware, which puts the TokenInfo of tokens[token] in each request's
// Extra, and returns a client session for token.
func serveWithTokens(t *testing.T, s *mcp.Server, tokens map[string]*auth.TokenInfo, token string) *mcp.ClientSession {
	t.Helper()
	verify := func(_ context.Context, tok string, _ *http.Request) (*auth.TokenInfo, error) {
		info, ok := tokens[tok]
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		c := *info
		c.Expiration = time.Now().Add(time.Hour)
		return &c, nil
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
	srv := httptest.NewServer(auth.RequireBearerToken(verify, nil)(h))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: bearerTransport(token)}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: client}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

type bearerTransport string

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

// connectInMemory connects a client to s with no authentication.
func connectInMemory(t *testing.T, s *mcp.Server) *mcp.ClientSession {
	t.Helper()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// callerRegistry: tools read (r), write (w), open, and admin (r, group
// admins only); a prompt, a resource and a template for the admins only; a
// completion handler that knows a secret.
func callerRegistry() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, &mcp.ServerOptions{
		CompletionHandler: func(context.Context, *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{"secret"}}}, nil
		},
	})
	r := policy.New(s, &policy.Options{Implies: map[string][]string{"w": {"r"}}})
	admins := policy.Group("admins")
	policy.AddTool(r, &mcp.Tool{Name: "read"}, noopTool, policy.Need("r"))
	policy.AddTool(r, &mcp.Tool{Name: "write"}, noopTool, policy.Need("w"))
	policy.AddTool(r, &mcp.Tool{Name: "open"}, noopTool, policy.Open)
	policy.AddTool(r, &mcp.Tool{Name: "admin"}, noopTool, policy.Need("r").For(admins))
	r.AddPrompt(&mcp.Prompt{Name: "p", Arguments: []*mcp.PromptArgument{{Name: "a"}}}, noopPrompt, policy.Need("r").For(admins))
	r.AddResource(&mcp.Resource{URI: "x://a", Name: "a"}, noopResource, policy.Need("r").For(admins))
	r.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "x://t/{id}", Name: "t"}, noopResource, policy.Need("r").For(admins))
	return s
}

// lists returns the names a client sees in each list, sorted.
func lists(t *testing.T, cs *mcp.ClientSession) map[string][]string {
	t.Helper()
	ctx := t.Context()
	out := map[string][]string{"tools": {}, "prompts": {}, "resources": {}, "templates": {}}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range tools.Tools {
		out["tools"] = append(out["tools"], x.Name)
	}
	prompts, err := cs.ListPrompts(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range prompts.Prompts {
		out["prompts"] = append(out["prompts"], x.Name)
	}
	res, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res.Resources {
		out["resources"] = append(out["resources"], x.URI)
	}
	tmpls, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range tmpls.ResourceTemplates {
		out["templates"] = append(out["templates"], x.URITemplate)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// TestMiddlewarePerCaller: the middleware lists and serves each caller
// what their token and the predicates allow, and nothing else.
func TestMiddlewarePerCaller(t *testing.T) {
	tokens := map[string]*auth.TokenInfo{
		"admin": {UserID: "root", Scopes: []string{"r"}, Extra: map[string]any{authz.ExtraGroups: []any{"admins"}}},
		"staff": {UserID: "bob", Scopes: []string{"w"}, Extra: map[string]any{authz.ExtraGroups: []string{"staff"}}},
		"none":  {UserID: "eve"},
	}
	admin := map[string][]string{"tools": {"admin", "open", "read"}, "prompts": {"p"}, "resources": {"x://a"}, "templates": {"x://t/{id}"}}
	staff := map[string][]string{"tools": {"open", "read", "write"}, "prompts": {}, "resources": {}, "templates": {}}
	for _, tt := range []struct {
		token string // "" for no authentication
		want  map[string][]string
	}{
		{token: "admin", want: admin},
		{token: "staff", want: staff},
		{token: "none", want: map[string][]string{"tools": {"open"}, "prompts": {}, "resources": {}, "templates": {}}},
		// Without authentication scopes are not checked, and no predicate
		// holds.
		{token: "", want: staff},
	} {
		t.Run("lists of "+tt.token, func(t *testing.T) {
			var cs *mcp.ClientSession
			if tt.token == "" {
				cs = connectInMemory(t, callerRegistry())
			} else {
				cs = serveWithTokens(t, callerRegistry(), tokens, tt.token)
			}
			if diff := cmp.Diff(tt.want, lists(t, cs)); diff != "" {
				t.Errorf("lists (-want +got):\n%s", diff)
			}
		})
	}

	ctx := t.Context()
	var rpcErr *jsonrpc.Error
	t.Run("the admins' items are unknown to others", func(t *testing.T) {
		for _, cs := range []*mcp.ClientSession{serveWithTokens(t, callerRegistry(), tokens, "staff"), connectInMemory(t, callerRegistry())} {
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "admin"}); !errors.As(err, &rpcErr) || rpcErr.Code != jsonrpc.CodeInvalidParams || rpcErr.Message != `unknown tool "admin"` {
				t.Errorf("calling admin: %v, want the unknown-tool error", err)
			}
			if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "p"}); !errors.As(err, &rpcErr) || rpcErr.Message != `unknown prompt "p"` {
				t.Errorf("getting p: %v, want the unknown-prompt error", err)
			}
			for _, uri := range []string{"x://a", "x://t/1"} {
				if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri}); !errors.As(err, &rpcErr) || rpcErr.Message != "Resource not found" {
					t.Errorf("reading %s: %v, want resource not found", uri, err)
				}
			}
			res, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "p"}, Argument: mcp.CompleteParamsArgument{Name: "a", Value: "s"}})
			if err != nil || len(res.Completion.Values) != 0 {
				t.Errorf("completing p: %v, %v; want no values", res, err)
			}
		}
	})
	t.Run("the admins use them", func(t *testing.T) {
		cs := serveWithTokens(t, callerRegistry(), tokens, "admin")
		if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "admin"}); err != nil || res.IsError {
			t.Errorf("calling admin: %v %v", res, err)
		}
		if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "p"}); err != nil {
			t.Errorf("getting p: %v", err)
		}
		if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "x://t/1"}); err != nil {
			t.Errorf("reading x://t/1: %v", err)
		}
		res, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "p"}, Argument: mcp.CompleteParamsArgument{Name: "a", Value: "s"}})
		if err != nil || !slices.Equal(res.Completion.Values, []string{"secret"}) {
			t.Errorf("completing p: %v, %v; want the handler's values", res, err)
		}
	})
	// Where nothing checked the scopes before (mcpserver's CheckScopes
	// answers with the 403 step-up challenge), the middleware refuses a
	// use the token's scopes do not cover, naming them.
	t.Run("a scope missing", func(t *testing.T) {
		cs := serveWithTokens(t, callerRegistry(), tokens, "admin")
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "write"}); !errors.As(err, &rpcErr) || rpcErr.Message != `tool "write" needs the scopes: w` {
			t.Errorf("calling write with r: %v, want the scopes named", err)
		}
	})
}

// TestMethodRuleWithPredicate: a method that names no item, given a rule
// with a predicate, is refused as an unknown method to the callers it
// does not admit.
func TestMethodRuleWithPredicate(t *testing.T) {
	s := newServer()
	r := policy.New(s, nil)
	r.Method("tools/list", policy.Open.For(policy.Subject("root")))
	tokens := map[string]*auth.TokenInfo{"root": {UserID: "root"}, "bob": {UserID: "bob"}}
	if _, err := serveWithTokens(t, s, tokens, "root").ListTools(t.Context(), nil); err != nil {
		t.Errorf("root listing: %v", err)
	}
	var rpcErr *jsonrpc.Error
	if _, err := serveWithTokens(t, s, tokens, "bob").ListTools(t.Context(), nil); !errors.As(err, &rpcErr) || rpcErr.Code != jsonrpc.CodeMethodNotFound {
		t.Errorf("bob listing: %v, want method not found", err)
	}
}

// TestListStepUp: with Options.ListStepUp, an item a step-up would open is
// listed (and its call refused naming the scopes), and one whose predicate
// is false still is not.
func TestListStepUp(t *testing.T) {
	s := newServer()
	r := policy.New(s, &policy.Options{ListStepUp: true})
	policy.AddTool(r, &mcp.Tool{Name: "read"}, noopTool, policy.Need("r"))
	policy.AddTool(r, &mcp.Tool{Name: "write"}, noopTool, policy.Need("w"))
	policy.AddTool(r, &mcp.Tool{Name: "admin"}, noopTool, policy.Need("w").For(policy.Group("admins")))
	policy.AddTool(r, &mcp.Tool{Name: "staff"}, noopTool, policy.Need("r").For(policy.Group("staff")))
	cs := serveWithTokens(t, s, map[string]*auth.TokenInfo{"reader": {UserID: "u", Scopes: []string{"r"}, Extra: map[string]any{authz.ExtraGroups: []string{"admins"}}}}, "reader")
	if diff := cmp.Diff([]string{"admin", "read", "write"}, lists(t, cs)["tools"]); diff != "" {
		t.Errorf("tools/list (-want +got):\n%s", diff)
	}
}
