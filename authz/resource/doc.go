// Package resource makes the MCP endpoint an OAuth 2.1 resource server: it
// trusts access tokens, and knows nothing of how they are issued (it never
// imports the authorization server).
//
//   - bearer.go: the one middleware that authenticates every /mcp request
//     (RequireBearer), answers with [RFC 6750 §3] challenges (401
//     invalid_token, 403 insufficient_scope with every scope the operation
//     needs, 400 invalid_request) that point at the [RFC 9728 §5.1]
//     metadata, and fills the go-sdk's TokenInfo by wrapping
//     auth.RequireBearerToken; which scopes a request needs it asks the
//     MCP layer (BearerOptions.CheckScopes), and who may use the server at
//     all (BearerOptions.Admit: 403 access_denied);
//   - jwt.go: JWT access tokens ([RFC 9068]) from an external authorization
//     server, verified against its JWKS ([RFC 7517]) with jwx/v3, and
//     remembered by hash while the JWKS serves the key that verified them;
//   - introspect.go: opaque tokens through [RFC 7662] introspection.
//
// Both verifiers put the user's groups (a configurable claim, bounded) in
// TokenInfo.Extra["groups"] and a verified e-mail address (email_verified
// true) in Extra["email"].
//
// [RFC 6750 §3]: https://www.rfc-editor.org/rfc/rfc6750#section-3
// [RFC 9728 §5.1]: https://www.rfc-editor.org/rfc/rfc9728#section-5.1
// [RFC 9068]: https://www.rfc-editor.org/rfc/rfc9068
// [RFC 7517]: https://www.rfc-editor.org/rfc/rfc7517
// [RFC 7662]: https://www.rfc-editor.org/rfc/rfc7662
package resource
