// Package policy says who may use each tool, prompt and resource of an MCP
// server, in the same call that registers the item, and denies everything
// else.
//
// A Registry wraps a go-sdk *mcp.Server. Items are added through it
// (AddTool, AddPrompt, AddResource, AddResourceTemplate), each with the
// Access it needs: scopes (Need) or none (Open), and optionally a
// Predicate over the caller (Access.For: Subject, Email, EmailDomain,
// Group, ClientID, combined with AnyOf and AllOf). An Access that names no
// scope and is not Open is a wiring mistake and panics at registration.
//
// The Registry installs a receiving middleware on the server that answers
// each request for its caller (the go-sdk's req.Extra.TokenInfo). An item
// the caller may not use is left out of their tools/list, prompts/list,
// resources/list and resources/templates/list, and their tools/call,
// prompts/get, resources/read and resources/subscribe of it answer as for
// an unknown item. An item without a rule is used by no one: so an item
// added to the server directly, bypassing the Registry, is never served.
// A list given to an authenticated caller is marked cacheScope "private".
//
// The scopes themselves are checked before the request reaches the MCP
// layer, by the bearer middleware, which asks the MCP endpoint what a
// request needs (Decide), so that a missing scope gets an HTTP 403
// insufficient_scope challenge that clients answer with a step-up. That
// challenge is given only when more scope would help: for a caller whose
// predicate is false, the use is answered as unknown instead (Verdict).
//
// Matching is deterministic: tools and prompts by exact name; a resource URI
// by an exact registered resource URI, then an exact template string (a
// completion/complete reference names the template itself), then the
// matching template whose literal prefix (the text before its first "{") is
// longest, ties broken by the template string. Methods that name no item
// (initialize, the lists, ping, …) need only what the bearer middleware asks
// of every request, unless Method gives them a rule.
package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/yosida95/uritemplate/v3"
)

// An Access is what using one item needs: the scopes the caller's token
// must grant, and optionally a Predicate the caller must satisfy.
type Access struct {
	// Scopes are the OAuth scopes the caller's token must grant, all of
	// them (a scope may imply others: Options.Implies).
	Scopes []string
	// Open lets any caller use the item with no particular scope: one that
	// passed authentication when the endpoint requires it, anyone when it
	// does not. Open and Scopes are exclusive.
	Open bool
	// Allow, if set, must also hold for the caller (see For).
	Allow Predicate
}

// Need is the Access that requires every one of scopes.
func Need(scopes ...string) Access { return Access{Scopes: scopes} }

// Open is the Access of an item any caller may use.
var Open = Access{Open: true}

// For returns a with p added to what the caller must satisfy (with a
// predicate already there, both must hold):
//
//	policy.Need("notes:write").For(policy.Group("admins"))
//
// A caller for whom the predicate is false cannot use the item whatever
// the scopes of their token: it is absent from their lists, and their use
// of it is answered as the use of an unknown item, with no step-up
// challenge, since no scope would help. A request without authentication
// (no token: --auth none) has no caller, so an item with a predicate is
// refused to it, and Open, scope-only items are served to it.
func (a Access) For(p Predicate) Access {
	if p == nil {
		panic("policy: Access.For: nil Predicate")
	}
	if a.Allow != nil {
		p = AllOf(a.Allow, p)
	}
	a.Allow = p
	return a
}

func (a Access) check(kind, name string) Access {
	if a.Open == (len(a.Scopes) > 0) {
		panic(fmt.Sprintf("policy: %s %q: give it the scopes it needs or mark it Open (exactly one)", kind, name))
	}
	if slices.Contains(a.Scopes, "") {
		panic(fmt.Sprintf("policy: %s %q: empty scope name", kind, name))
	}
	a.Scopes = slices.Clone(a.Scopes)
	return a
}

// A Verdict is what a caller may do with one item (Registry.Decide).
type Verdict int

const (
	// Allowed: the caller may list and use the item.
	Allowed Verdict = iota
	// StepUp: the caller satisfies the item's predicate, if any, but the
	// token lacks scopes: a token with more scope would do, so a use gets
	// the 403 insufficient_scope challenge. The item is not listed.
	StepUp
	// Hidden: no token of this caller would do (the item has no rule, or
	// its predicate is false): the item is not listed and its use is
	// answered as the use of an unknown item.
	Hidden
)

// String returns the Verdict's name.
func (v Verdict) String() string {
	switch v {
	case Allowed:
		return "Allowed"
	case StepUp:
		return "StepUp"
	case Hidden:
		return "Hidden"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Options configures a Registry.
type Options struct {
	// Implies maps a scope to the scopes it includes: with
	// {"notes:write": {"notes:read"}}, a token granting notes:write may use
	// what needs notes:read.
	Implies map[string][]string
	// ListStepUp lists, besides what the caller may use, the items that a
	// token with more scope would let them use (Verdict StepUp), so that a
	// client that calls only what it was listed can call one and be asked
	// to step up. By default they are left out: each caller is listed what
	// their token allows, and a client sees more only once it holds a
	// token with more scope. Items whose predicate the caller does not
	// satisfy are never listed.
	ListStepUp bool
}

// A Registry holds the items of one server and what each needs.
type Registry struct {
	server *mcp.Server
	// impliedBy maps a scope to the other scopes that include it,
	// transitively (Options.Implies reversed and closed), so that
	// Satisfied allocates nothing.
	impliedBy  map[string][]string
	listStepUp bool

	verifying atomic.Bool // Verify is listing what the server has

	mu        sync.RWMutex
	tools     map[string]Access
	prompts   map[string]Access
	resources map[string]Access // exact URI
	templates []templateRule    // sorted by precedence
	methods   map[string]Access // methods that name no item
}

type templateRule struct {
	text   string
	prefix string
	tmpl   *uritemplate.Template
	access Access
}

// New returns a Registry for s and installs its receiving middleware, which
// hides and refuses the items that have no rule.
func New(s *mcp.Server, opts *Options) *Registry {
	if s == nil {
		panic("policy: nil server")
	}
	r := &Registry{
		server:    s,
		tools:     map[string]Access{},
		prompts:   map[string]Access{},
		resources: map[string]Access{},
		methods:   map[string]Access{},
	}
	if opts != nil {
		r.impliedBy = impliedBy(opts.Implies)
		r.listStepUp = opts.ListStepUp
	}
	s.AddReceivingMiddleware(r.middleware)
	return r
}

// Server returns the server the Registry adds items to.
func (r *Registry) Server() *mcp.Server { return r.server }

// AddTool adds a typed tool to the Registry's server (the go-sdk's
// mcp.AddTool) with the Access it needs.
func AddTool[In, Out any](r *Registry, t *mcp.Tool, h mcp.ToolHandlerFor[In, Out], a Access) {
	r.setTool(t.Name, a)
	mcp.AddTool(r.server, t, h)
}

// AddTool adds a tool with a raw handler and the Access it needs.
func (r *Registry) AddTool(t *mcp.Tool, h mcp.ToolHandler, a Access) {
	r.setTool(t.Name, a)
	r.server.AddTool(t, h)
}

func (r *Registry) setTool(name string, a Access) {
	a = a.check("tool", name)
	r.mu.Lock()
	r.tools[name] = a
	r.mu.Unlock()
}

// AddPrompt adds a prompt with the Access that getting or completing it
// needs.
func (r *Registry) AddPrompt(p *mcp.Prompt, h mcp.PromptHandler, a Access) {
	a = a.check("prompt", p.Name)
	r.mu.Lock()
	r.prompts[p.Name] = a
	r.mu.Unlock()
	r.server.AddPrompt(p, h)
}

// AddResource adds a resource with the Access that reading, subscribing to
// or completing it needs.
func (r *Registry) AddResource(res *mcp.Resource, h mcp.ResourceHandler, a Access) {
	a = a.check("resource", res.URI)
	r.mu.Lock()
	r.resources[res.URI] = a
	r.mu.Unlock()
	r.server.AddResource(res, h)
}

// AddResourceTemplate adds a resource template with the Access that
// reading, subscribing to or completing the resources it matches needs.
func (r *Registry) AddResourceTemplate(t *mcp.ResourceTemplate, h mcp.ResourceHandler, a Access) {
	a = a.check("resource template", t.URITemplate)
	tmpl, err := uritemplate.New(t.URITemplate)
	if err != nil {
		panic(fmt.Sprintf("policy: resource template %q: %v", t.URITemplate, err))
	}
	prefix, _, _ := strings.Cut(t.URITemplate, "{")
	r.mu.Lock()
	r.templates = slices.DeleteFunc(r.templates, func(x templateRule) bool { return x.text == t.URITemplate })
	r.templates = append(r.templates, templateRule{text: t.URITemplate, prefix: prefix, tmpl: tmpl, access: a})
	slices.SortFunc(r.templates, func(x, y templateRule) int {
		if len(x.prefix) != len(y.prefix) {
			return len(y.prefix) - len(x.prefix) // longest literal prefix first
		}
		return strings.Compare(x.text, y.text)
	})
	r.mu.Unlock()
	r.server.AddResourceTemplate(t, h)
}

// Method gives a method that names no item (for example
// "subscriptions/listen") the Access it needs.
func (r *Registry) Method(method string, a Access) {
	a = a.check("method", method)
	r.mu.Lock()
	r.methods[method] = a
	r.mu.Unlock()
}

// Lookup returns the Access that the operation (method, name) needs, where
// name is what the method names: the tool or prompt name, the resource URI,
// or a completion reference's name or URI ("ref/prompt:NAME" is not used;
// give the bare name or URI). known is false for an operation that names an
// item without a rule: it is refused. A method that names no item and has no
// rule is known and Open.
func (r *Registry) Lookup(method, name string) (a Access, known bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.lookup(method, name)
}

// lookup is Lookup with r.mu held.
func (r *Registry) lookup(method, name string) (a Access, known bool) {
	switch method {
	case "tools/call":
		a, known = r.tools[name]
	case "prompts/get":
		a, known = r.prompts[name]
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		a, known = r.resource(name)
	case "completion/complete":
		if a, known = r.prompts[name]; !known {
			a, known = r.resource(name)
		}
	default:
		if a, known = r.methods[method]; !known {
			return Open, true
		}
	}
	return a, known
}

// resource finds the rule of a URI, with r.mu held.
func (r *Registry) resource(uri string) (Access, bool) {
	if a, ok := r.resources[uri]; ok {
		return a, true
	}
	for _, t := range r.templates {
		if t.text == uri {
			return t.access, true
		}
	}
	for _, t := range r.templates {
		if strings.HasPrefix(uri, t.prefix) && t.tmpl.Match(uri) != nil {
			return t.access, true
		}
	}
	return Access{}, false
}

// Satisfied reports whether a token granting granted may use what a needs,
// following Options.Implies transitively (a cycle is harmless). It ignores
// a's predicate: see Decide.
func (r *Registry) Satisfied(granted []string, a Access) bool {
	for _, need := range a.Scopes {
		if !slices.ContainsFunc(granted, func(g string) bool {
			return g == need || slices.Contains(r.impliedBy[need], g)
		}) {
			return false
		}
	}
	return true
}

// impliedBy reverses implies and closes it: each scope maps to every other
// scope that includes it, directly or through others.
func impliedBy(implies map[string][]string) map[string][]string {
	out := map[string][]string{}
	for from := range implies {
		seen := map[string]bool{from: true}
		stack := []string{from}
		for len(stack) > 0 {
			s := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, t := range implies[s] {
				if !seen[t] {
					seen[t] = true
					stack = append(stack, t)
					out[t] = append(out[t], from)
				}
			}
		}
	}
	return out
}

// Decide returns what the caller of a request may do with an item that
// needs a. info is the request's verified token, nil for a request without
// authentication, whose scopes are not checked (the endpoint requires
// none) and which satisfies no predicate.
func (r *Registry) Decide(info *auth.TokenInfo, a Access) Verdict {
	q := asker{info: info}
	return r.decide(&q, a)
}

// asker is one request's caller, built once and only if a predicate asks.
type asker struct {
	info   *auth.TokenInfo
	caller Caller
	built  bool
}

func (r *Registry) decide(q *asker, a Access) Verdict {
	if a.Allow != nil {
		if q.info == nil {
			return Hidden
		}
		if !q.built {
			q.caller, q.built = CallerOf(q.info), true
		}
		if !a.Allow(q.caller) {
			return Hidden
		}
	}
	if q.info != nil && !r.Satisfied(q.info.Scopes, a) {
		return StepUp
	}
	return Allowed
}

// middleware answers each request for its caller (the request's
// TokenInfo): an item the caller may not use is left out of the lists, and
// its use is answered as the use of an unknown item when no scope would
// help (Hidden), or with an error naming the scopes when one would
// (StepUp: only when the endpoint did not already answer with a step-up
// challenge, which mcpserver's CheckScopes does).
func (r *Registry) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		q := asker{}
		if extra := req.GetExtra(); extra != nil {
			q.info = extra.TokenInfo
		}
		if kind, name, ok := named(req.GetParams()); ok {
			a, known := r.Lookup(method, name)
			if !known {
				return unknown(kind, name)
			}
			switch r.decide(&q, a) {
			case Hidden:
				return unknown(kind, name)
			case StepUp:
				return insufficient(kind, name, a)
			}
		} else if a, ruled := r.method(method); ruled {
			switch r.decide(&q, a) {
			case Hidden:
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "method not found"}
			case StepUp:
				return insufficient("method", method, a)
			}
		}
		res, err := next(ctx, method, req)
		if err != nil || res == nil || r.verifying.Load() {
			return res, err
		}
		// One read lock for the whole list (predicates must not call
		// back into the Registry).
		r.mu.RLock()
		defer r.mu.RUnlock()
		hidden := func(method, name string) bool {
			a, known := r.lookup(method, name)
			if !known {
				return true
			}
			v := r.decide(&q, a)
			return v == Hidden || (v == StepUp && !r.listStepUp)
		}
		var c *mcp.Cacheable
		switch res := res.(type) {
		case *mcp.ListToolsResult:
			res.Tools = slices.DeleteFunc(res.Tools, func(x *mcp.Tool) bool { return hidden("tools/call", x.Name) })
			c = &res.Cacheable
		case *mcp.ListPromptsResult:
			res.Prompts = slices.DeleteFunc(res.Prompts, func(x *mcp.Prompt) bool { return hidden("prompts/get", x.Name) })
			c = &res.Cacheable
		case *mcp.ListResourcesResult:
			res.Resources = slices.DeleteFunc(res.Resources, func(x *mcp.Resource) bool { return hidden("resources/read", x.URI) })
			c = &res.Cacheable
		case *mcp.ListResourceTemplatesResult:
			res.ResourceTemplates = slices.DeleteFunc(res.ResourceTemplates, func(x *mcp.ResourceTemplate) bool {
				return hidden("resources/read", x.URITemplate)
			})
			c = &res.Cacheable
		}
		if c != nil && q.info != nil {
			// The list is this caller's: no one else may be served it
			// from a cache (2026-07-28 cacheScope).
			c.CacheScope = "private"
		}
		return res, nil
	}
}

// method returns the rule of a method that names no item, if it has one.
func (r *Registry) method(method string) (Access, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.methods[method]
	return a, ok
}

// named returns the kind and name of the item that a request's params
// name; ok is false for a request that names none.
func named(params mcp.Params) (kind, name string, ok bool) {
	switch p := params.(type) {
	case *mcp.CallToolParamsRaw: // what a server receives
		return "tool", p.Name, true
	case *mcp.CallToolParams:
		return "tool", p.Name, true
	case *mcp.GetPromptParams:
		return "prompt", p.Name, true
	case *mcp.ReadResourceParams:
		return "resource", p.URI, true
	case *mcp.SubscribeParams:
		return "resource", p.URI, true
	case *mcp.CompleteParams:
		if p.Ref != nil {
			return "completion", refName(p.Ref), true
		}
	}
	return "", "", false
}

// unknown answers the use of an item without a rule, or one the caller
// may not use whatever their scopes, as the go-sdk answers an unknown one;
// a completion of one gets no values.
func unknown(kind, name string) (mcp.Result, error) {
	switch kind {
	case "resource":
		return nil, mcp.ResourceNotFoundError(name)
	case "completion":
		return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{}}}, nil
	}
	return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown %s %q", kind, name)}
}

// insufficient answers the use of an item whose scopes the token lacks
// when the endpoint did not check them first (mcpserver's CheckScopes
// does, and answers with the 403 step-up challenge): as a JSON-RPC error
// naming the scopes, which a caller who could ask for them may learn.
func insufficient(kind, name string, a Access) (mcp.Result, error) {
	if kind == "completion" {
		return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{}}}, nil
	}
	return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams,
		Message: fmt.Sprintf("%s %q needs the scopes: %s", kind, name, strings.Join(a.Scopes, " "))}
}

// refName is what a completion reference names: a prompt's name or a
// resource's URI (template).
func refName(ref *mcp.CompleteReference) string {
	if ref.Type == "ref/prompt" {
		return ref.Name
	}
	return ref.URI
}

// Verify lists every tool, prompt, resource and resource template of the
// server and returns an error naming those without a rule: items added to
// the server directly rather than through the Registry, which are never
// served. Call it once the items are registered and before serving (while
// it runs, lists are not filtered).
func (r *Registry) Verify(ctx context.Context) error {
	r.verifying.Store(true)
	defer r.verifying.Store(false)
	st, ct := mcp.NewInMemoryTransports()
	ss, err := r.server.Connect(ctx, st, nil)
	if err != nil {
		return fmt.Errorf("policy: verify: %w", err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "policy-verify", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		return fmt.Errorf("policy: verify: %w", err)
	}
	defer cs.Close()
	var missing []string
	check := func(kind, method, name string) {
		if _, ok := r.Lookup(method, name); !ok {
			missing = append(missing, fmt.Sprintf("%s %q", kind, name))
		}
	}
	caps := cs.InitializeResult().Capabilities
	if caps.Tools != nil {
		for t, err := range cs.Tools(ctx, nil) {
			if err != nil {
				return fmt.Errorf("policy: verify: list tools: %w", err)
			}
			check("tool", "tools/call", t.Name)
		}
	}
	if caps.Prompts != nil {
		for p, err := range cs.Prompts(ctx, nil) {
			if err != nil {
				return fmt.Errorf("policy: verify: list prompts: %w", err)
			}
			check("prompt", "prompts/get", p.Name)
		}
	}
	if caps.Resources != nil {
		for res, err := range cs.Resources(ctx, nil) {
			if err != nil {
				return fmt.Errorf("policy: verify: list resources: %w", err)
			}
			check("resource", "resources/read", res.URI)
		}
		for t, err := range cs.ResourceTemplates(ctx, nil) {
			if err != nil {
				return fmt.Errorf("policy: verify: list resource templates: %w", err)
			}
			check("resource template", "resources/read", t.URITemplate)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("policy: registered without a rule, so never served: %s; add them through the Registry with their Access", strings.Join(missing, ", "))
	}
	return nil
}
