// Package authz holds what every OAuth package of remotemcp shares, and
// nothing else: the one OAuth error type, scope strings, the resource
// comparison, the store sentinel and the names of what a verified token
// says of its caller. The OAuth code itself is split by
// role, one RFC family per package:
//
//   - authz/resource: the resource server: the bearer middleware in front
//     of /mcp, and the verifiers of tokens from any authorization server
//     (JWT against a JWKS, RFC 7662 introspection). It never imports the
//     authorization server.
//   - authz/token: our own access tokens: the signing key ring, the
//     issuer and verifier, the JWKS handler, the revocation check.
//   - authz/as: the authorization server in front of an upstream identity
//     provider (metadata, registration, authorize, consent, callback,
//     token, revoke, introspect, CIMD), with the interfaces of its stores;
//     authz/memstore and authz/redisstore implement them, authz/storetest
//     is their one contract suite.
//   - authz/upstream: the upstream identity provider (OIDC, GitHub, Google)
//     and the vault of its tokens, refreshed under a lock.
//   - authz/authztest: test helpers the tests of these packages share.
//
// This package's files:
//
//   - errors.go: [RFC 6750 §3.1] codes, the verifier sentinels
//     (ErrInvalidToken, ErrUnavailable) and the store sentinel ErrNotFound;
//   - oautherror.go: the one OAuth error type and WriteError ([RFC 6749
//     §5.2], [RFC 6749 §4.1.2.1], [RFC 7591 §3.2.2], [RFC 8707 §2]):
//     no-store, and no cause ever serialized;
//   - scopes.go: scope strings ([RFC 6749 §3.3]) and secret fingerprints
//     for logs;
//   - audience.go: resource identifiers compared ([RFC 8707 §2]);
//   - extra.go: the keys of auth.TokenInfo.Extra that the verifiers fill
//     and the per-item policy reads (client id, verified e-mail, groups).
//
// [RFC 6750 §3.1]: https://www.rfc-editor.org/rfc/rfc6750#section-3.1
// [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
// [RFC 6749 §4.1.2.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
// [RFC 6749 §3.3]: https://www.rfc-editor.org/rfc/rfc6749#section-3.3
// [RFC 7591 §3.2.2]: https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2
// [RFC 8707 §2]: https://www.rfc-editor.org/rfc/rfc8707#section-2
package authz
