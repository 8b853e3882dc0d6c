// Package upstream is the authorization server's leg to the upstream
// identity provider, which signs users in and has no dynamic registration:
//
//   - upstream.go, upstream_static.go: the providers (OpenID Connect
//     Discovery, GitHub, Google, or endpoints given), driven with x/oauth2:
//     [RFC 6749 §4.1] with PKCE ([RFC 7636]), and the user's identity;
//   - vault.go: upstream tokens sealed with AES-256-GCM under a key ring,
//     the grant as additional data;
//   - vaultclient.go: the Vault: upstream tokens per grant, refreshed
//     ([RFC 6749 §6]) before expiry under single-flight and an optional
//     cross-replica lock; invalid_grant revokes the grant, 5xx keeps it;
//   - vaultstore.go: the vault's store interfaces;
//   - allow.go: the allow-list of who may sign in (users, verified e-mail
//     domains, GitHub organizations and teams, OIDC groups), checked by
//     the authorization server and again at every upstream refresh;
//   - github.go: a GitHub user's verified e-mail and memberships.
//
// [RFC 6749 §4.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1
// [RFC 6749 §6]: https://www.rfc-editor.org/rfc/rfc6749#section-6
// [RFC 7636]: https://www.rfc-editor.org/rfc/rfc7636
package upstream
