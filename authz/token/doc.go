// Package token issues and verifies our own access tokens, those of the
// authorization server in authz/as:
//
//   - keys.go: the ES256 signing key ring, kids by [RFC 7638] thumbprint,
//     retired keys published until their tokens expire, and the JWKS
//     handler ([RFC 7517 §5]);
//   - tokens.go: the Issuer: access tokens as [RFC 9068] at+jwt, minted
//     and verified locally (remembered by hash once verified), with a
//     revocation hook;
//   - revocation.go: that hook over the grant store: a token whose grant
//     was revoked or is gone is refused.
//
// [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
// [RFC 7517 §5]: https://www.rfc-editor.org/rfc/rfc7517#section-5
// [RFC 9068]: https://www.rfc-editor.org/rfc/rfc9068
package token
