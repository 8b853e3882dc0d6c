// Package authz is the OAuth side of remotemcp. This first half makes the
// MCP endpoint an OAuth 2.1 resource server:
//
//   - bearer.go: the one middleware that authenticates every /mcp request,
//     answers with RFC 6750 §3 challenges (401 invalid_token, 403
//     insufficient_scope with every scope the operation needs, 400
//     invalid_request) that point at the RFC 9728 metadata, and fills the
//     go-sdk's TokenInfo by wrapping auth.RequireBearerToken;
//   - operations.go: the (method, name) operations of a request body, read
//     the way the MCP layer reads them, for the scope check;
//   - scopes.go: which scopes each JSON-RPC operation needs (step-up);
//   - jwt.go: JWT access tokens (RFC 9068) from an external authorization
//     server, verified against its JWKS (RFC 7517) with jwx/v3;
//   - introspect.go: opaque tokens through RFC 7662 introspection.
//
// The second half is the authorization-server facade (--auth proxy): our
// own OAuth 2.1 authorization server in front of an upstream identity
// provider that has no dynamic registration. Server (server.go) serves it:
//
//   - asmetadata.go: RFC 8414 metadata (also at the OpenID paths);
//   - register.go: RFC 7591 dynamic registration;
//   - cimd.go: Client ID Metadata Documents, fetched with a connection-time
//     SSRF guard, no redirects, size and time limits, HTTP caching;
//   - authorize.go, consent.go: RFC 6749 §4.1 with PKCE and RFC 8707
//     resource; the consent page shown before any upstream redirect (the
//     MCP confused-deputy rule), CSRF tokens and signed __Host- cookies
//     binding the flow to one browser; RFC 9207 iss on every response;
//   - callback.go: the upstream's answer: single-use state, code exchange,
//     identity, grant, vault, our code;
//   - token.go: RFC 6749 §4.1.3 and §6: codes single-use (a replay
//     revokes the grant), refresh rotation with a grace window and reuse
//     detection;
//   - revoke.go: RFC 7009 revocation and RFC 7662 introspection;
//   - ratelimit.go: rate limits on /register, /authorize and /token per
//     client address and client id (GCRA; 429 with Retry-After, RFC 6585
//     §4), X-Forwarded-For believed only from trusted proxies;
//   - upstream.go, upstream_static.go: the upstream leg (OIDC discovery,
//     GitHub, Google) with x/oauth2 and PKCE;
//   - vaultclient.go: upstream tokens per grant, refreshed before expiry
//     under single-flight; invalid_grant revokes, 5xx keeps;
//   - store.go: the consumer-side store interfaces (memstore, storetest).
//
// Its building blocks:
//
//   - pkce.go: RFC 7636 S256 (plain and missing challenges are refused);
//   - keys.go: the ES256 signing key ring, kids by RFC 7638 thumbprint,
//     retired keys published until their tokens expire (RFC 7517 JWKS);
//   - tokens.go: our access tokens (RFC 9068 at+jwt), verified locally with
//     a revocation hook; opaque refresh tokens and codes, stored as hashes;
//   - vault.go: upstream tokens sealed with AES-256-GCM under a key ring;
//   - oautherror.go: the one OAuth error type and WriteError (RFC 6749 §5.2,
//     RFC 7591 §3.2.2): no-store, and no cause ever serialized;
//   - redirect.go: redirect-URI rules (RFC 8252: loopback on any port,
//     private-use schemes for native clients, https for web) and exact
//     matching with the loopback-port exception;
//   - clientmeta.go: RFC 7591 registration metadata and Client ID Metadata
//     Documents (client_id equals the document URL exactly).
//
// [RFC 6750 §3]: https://www.rfc-editor.org/rfc/rfc6750#section-3
// [RFC 9068]: https://www.rfc-editor.org/rfc/rfc9068
// [RFC 7662]: https://www.rfc-editor.org/rfc/rfc7662
// [RFC 9728]: https://www.rfc-editor.org/rfc/rfc9728
// [RFC 7636]: https://www.rfc-editor.org/rfc/rfc7636
// [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
// [RFC 7591]: https://www.rfc-editor.org/rfc/rfc7591
// [RFC 8252]: https://www.rfc-editor.org/rfc/rfc8252
// [RFC 8414]: https://www.rfc-editor.org/rfc/rfc8414
// [RFC 8707]: https://www.rfc-editor.org/rfc/rfc8707
// [RFC 9207]: https://www.rfc-editor.org/rfc/rfc9207
// [RFC 7009]: https://www.rfc-editor.org/rfc/rfc7009
package authz
