// Package remotemcp puts a go-sdk MCP server on the network as a remote MCP
// server: one endpoint for the stateless 2026-07-28 revision and the legacy
// session-based revisions, OAuth protection of the mode you choose, the
// protected-resource metadata, optionally its own authorization server in
// front of an upstream identity provider, state in process or in Redis
// (shared by replicas), health and readiness, and a graceful drain. It is
// what the remotemcp binary is built on.
//
// It replaces the go-sdk's mcp.NewStreamableHTTPHandler: where a program
// wrote
//
//	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
//
// it writes
//
//	reg := policy.New(server, nil)
//	policy.AddTool(reg, tool, handler, policy.Need("team:read"))
//	srv, err := remotemcp.New(ctx, reg, &remotemcp.Options{PublicURL: "https://mcp.example.com", Auth: remotemcp.AuthJWT, ...})
//	...
//	err = srv.ListenAndServe(ctx, ":8080")
//
// # Deny by default
//
// Every tool, prompt, resource and resource template declares what it needs
// in the call that registers it, through the policy.Registry that wraps the
// server: the scopes a caller's token must grant (policy.Need), or
// policy.Open for any authenticated caller. An item added to the
// *mcp.Server directly has no rule: it is left out of the lists and answers
// as unknown, and New (or Serve, for items added after New) returns an
// error naming it. A caller whose token lacks a scope an item needs gets an
// HTTP 403 insufficient_scope challenge, which MCP clients answer by asking
// the user for more (a step-up).
//
// # What a Server serves
//
//	/mcp                                        the MCP endpoint, both eras
//	/.well-known/oauth-protected-resource[/mcp] RFC 9728 metadata (not with AuthNone)
//	/authorize, /token, /register, ...          the authorization server (AuthProxy)
//	/healthz                                    200 while the process runs
//	/readyz                                     503 while draining, while Redis is unreachable, or
//	                                            while the identity provider has not answered since start-up
//
// An identity provider that cannot be reached when New runs (the JWKS of
// AuthJWT, the discovery document of an "oidc" or "google" upstream) does
// not fail New: the Server retries in the background (1s doubling to 30s),
// and until the provider answers, /readyz names its URL and the paths that
// need it answer 503 with Retry-After.
//
// # Logs
//
// Options.Logger gets the Server's own lines. The go-sdk server logs three
// INFO lines per connection ("server connecting", "server session
// connected", "server session disconnected"), which the legacy era makes on
// every request: the remotemcp binary demotes them to DEBUG in the logger
// it sets as mcp.ServerOptions.Logger, and a program may want the same.
// go-redis logs through one logger per process (redis.SetLogger).
//
// # Which file holds what
//
//	options.go  Options, ProxyOptions, TokenOptions and their checks
//	server.go   New, Server (ServeHTTP, Ready, Close, Notifier, Redis), the access log
//	serve.go    Serve and ListenAndServe: timeouts and the graceful drain
//	auth.go     the bearer check of each Auth mode, the metadata, JWKS discovery
//	idpwait.go  waiting out an identity provider that is down at start-up
//	proxy.go    AuthProxy: the authorization server, its stores, the upstream, UpstreamIdentity
//	devidpstore.go  the development upstream's records in Redis
//	state.go    the MCP stores in process or in Redis, the Redis health gate
//	metrics.go  Options.Metrics: the Prometheus families, fed by the observers of mcpserver, authz/as, the verifiers and go-redis
package remotemcp
