// Package tokencheck is what the two access-token verifiers share: the
// one of the resource server (authz/resource, tokens of any authorization
// server) and the one of our own tokens (authz/token). It remembers
// verified tokens by hash, and words refusals so that they never quote
// the token.
package tokencheck
