// Package devidp is a DEVELOPMENT-ONLY identity provider. NEVER USE IT IN
// PRODUCTION: anyone who can reach it signs in as anyone, with no password.
//
// It exists so that `make run` works with no upstream identity provider
// configured. remotemcp's --auth proxy facade talks to it exactly as it
// talks to a real upstream OpenID provider: OpenID Connect discovery from
// the issuer URL, the authorization-code flow with PKCE through
// golang.org/x/oauth2, and the userinfo endpoint for the user's identity.
// The login page asks only for a username (and, optionally, an email) and
// says plainly that it is a development tool.
//
// To keep it from being mistaken for, or deployed as, a real provider, it
// refuses to exist on anything but a loopback address: [New] rejects an
// issuer whose host is not localhost, 127.0.0.0/8 or ::1, and the handler
// answers 403 to a request whose Host is not one of those (which also
// defeats DNS rebinding from a web page in the developer's browser).
//
// It is a plain OAuth 2.0 authorization server with OpenID Connect
// discovery and userinfo, not a full OpenID provider: it issues no ID
// tokens, so its metadata lists no jwks_uri or ID token algorithms.
// Consumers read the user's identity from userinfo.
//
// There is one confidential client, configured in [Options]. Its state
// (pending logins, codes, tokens, and marks of used codes and revoked
// grants) goes to a [Store], every record with a TTL: by default process
// memory, at most 30 000 records, swept; a Store shared by several
// processes (remotemcp puts it in Redis with --redis-url) lets them serve
// one provider. Only SHA-256 digests of codes and tokens are kept.
//
// Files and the specifications they implement:
//
//   - devidp.go: [Options], [New], [Provider.Handler], routes and the
//     loopback checks.
//   - discovery.go: the discovery document ([OpenID Connect Discovery 1.0 §3],
//     [RFC 8414 §2]).
//   - authorize.go: the authorization endpoint and login page ([RFC 6749
//     §4.1.1], [RFC 6749 §4.1.2], [RFC 7636] S256 only, [RFC 9207] iss).
//   - token.go: the token endpoint: authorization_code and rotating
//     refresh_token grants, client_secret_basic and client_secret_post
//     ([RFC 6749 §2.3.1], [RFC 6749 §4.1.3], [RFC 6749 §5], [RFC 6749 §6]).
//   - userinfo.go: the userinfo endpoint ([OpenID Connect Core 1.0 §5.3],
//     [RFC 6750 §3] errors).
//   - errors.go: OAuth error responses ([RFC 6749 §5.2], [RFC 6749 §4.1.2.1]).
//   - store.go: the records, the [Store] interface and its in-memory
//     implementation.
//   - page.go, page.html: the HTML pages.
//
// [OpenID Connect Discovery 1.0 §3]: https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata
// [RFC 8414 §2]: https://www.rfc-editor.org/rfc/rfc8414#section-2
// [RFC 6749 §4.1.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
// [RFC 6749 §4.1.2]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
// [RFC 7636]: https://www.rfc-editor.org/rfc/rfc7636
// [RFC 9207]: https://www.rfc-editor.org/rfc/rfc9207
// [RFC 6749 §2.3.1]: https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
// [RFC 6749 §4.1.3]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
// [RFC 6749 §5]: https://www.rfc-editor.org/rfc/rfc6749#section-5
// [RFC 6749 §6]: https://www.rfc-editor.org/rfc/rfc6749#section-6
// [OpenID Connect Core 1.0 §5.3]: https://openid.net/specs/openid-connect-core-1_0.html#UserInfo
// [RFC 6750 §3]: https://www.rfc-editor.org/rfc/rfc6750#section-3
// [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
// [RFC 6749 §4.1.2.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
package devidp
