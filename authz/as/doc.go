// Package as is the authorization server (--auth proxy): our own OAuth 2.1
// authorization server in front of an upstream identity provider that has
// no dynamic registration. Server (server.go) serves it:
//
//   - asmetadata.go: [RFC 8414 §3] metadata (also at the OpenID paths);
//   - register.go: [RFC 7591 §3] dynamic registration;
//   - clientmeta.go: [RFC 7591 §2] registration metadata and Client ID
//     Metadata Documents (client_id equals the document URL exactly);
//   - cimd.go: Client ID Metadata Documents fetched with a connection-time
//     SSRF guard, no redirects, size and time limits, HTTP caching
//     ([RFC 9111 §5.2]);
//   - redirect.go: redirect-URI rules ([RFC 8252 §7]: loopback on any
//     port, private-use schemes for native clients, https for web) and
//     exact matching with the loopback-port exception;
//   - authorize.go, consent.go: [RFC 6749 §4.1.1] with PKCE and [RFC 8707]
//     resource; the consent page shown before any upstream redirect (the
//     MCP confused-deputy rule), CSRF tokens and signed __Host- cookies
//     binding the flow to one browser; [RFC 9207] iss on every response;
//   - callback.go: the upstream's answer: single-use state, code exchange,
//     identity, grant, vault, our code ([RFC 6749 §4.1.2]);
//   - signin.go: who may sign in (Options.Allow): the refusal page with
//     its link that sends access_denied ([RFC 6749 §4.1.2.1]), and the
//     re-check of the user at each refresh;
//   - signinstate.go: how long a sign-in's grant and upstream tokens live
//     (until its code is redeemed, then their full lifetime), and the
//     grant a new sign-in of the same user and client replaces;
//   - token.go: [RFC 6749 §4.1.3] and [RFC 6749 §6]: codes single-use (a
//     replay revokes the grant), refresh rotation with a grace window and
//     reuse detection;
//   - stepup.go: step-up for clients that refresh on a 403
//     insufficient_scope ([RFC 6750 §3.1]): the resource server's mark on
//     the grant refuses one refresh with invalid_grant, and the missing
//     scopes carry to the client's next authorization for the same user
//     ([RFC 6749 §3.3]: the server may issue other scopes than asked);
//   - revoke.go: [RFC 7009] revocation and [RFC 7662] introspection;
//   - pkce.go: [RFC 7636 §4.6] S256 (plain and missing challenges are
//     refused);
//   - opaque.go: refresh tokens and codes, 256 random bits, stored only as
//     hashes;
//   - ratelimit.go: rate limits on /register, /authorize and /token per
//     client address and client id (GCRA; 429 with Retry-After, [RFC 6585
//     §4]), X-Forwarded-For believed only from trusted proxies;
//   - store.go: the consumer-side store interfaces (authz/memstore,
//     authz/redisstore, one contract suite in authz/storetest);
//   - events.go: the Events it tells Options.Events (metrics), with
//     bounded fields only.
//
// Its access tokens come from authz/token, its users from authz/upstream.
//
// [RFC 6749 §4.1.2.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
// [RFC 8414 §3]: https://www.rfc-editor.org/rfc/rfc8414#section-3
// [RFC 7591 §2]: https://www.rfc-editor.org/rfc/rfc7591#section-2
// [RFC 7591 §3]: https://www.rfc-editor.org/rfc/rfc7591#section-3
// [RFC 9111 §5.2]: https://www.rfc-editor.org/rfc/rfc9111#section-5.2
// [RFC 8252 §7]: https://www.rfc-editor.org/rfc/rfc8252#section-7
// [RFC 6749 §4.1.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
// [RFC 6749 §4.1.2]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
// [RFC 6749 §4.1.3]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
// [RFC 6749 §6]: https://www.rfc-editor.org/rfc/rfc6749#section-6
// [RFC 6749 §3.3]: https://www.rfc-editor.org/rfc/rfc6749#section-3.3
// [RFC 6750 §3.1]: https://www.rfc-editor.org/rfc/rfc6750#section-3.1
// [RFC 8707]: https://www.rfc-editor.org/rfc/rfc8707
// [RFC 9207]: https://www.rfc-editor.org/rfc/rfc9207
// [RFC 7009]: https://www.rfc-editor.org/rfc/rfc7009
// [RFC 7662]: https://www.rfc-editor.org/rfc/rfc7662
// [RFC 7636 §4.6]: https://www.rfc-editor.org/rfc/rfc7636#section-4.6
// [RFC 6585 §4]: https://www.rfc-editor.org/rfc/rfc6585#section-4
package as
