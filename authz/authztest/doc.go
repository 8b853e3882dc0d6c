// Package authztest holds what the tests of several authz packages share:
// a settable clock, signing keys and signed test tokens (JWTs in every
// shape a verifier must refuse), and JSON goldens under -update. Only
// tests import it.
package authztest
