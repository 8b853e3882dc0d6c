package authz

import (
	"errors"
)

// Code is an OAuth error code.
type Code string

// RFC 6750 §3.1 error codes.
const (
	InvalidRequest    Code = "invalid_request"
	InvalidToken      Code = "invalid_token"
	InsufficientScope Code = "insufficient_scope"
)

// ErrUnavailable marks a verification that could not be completed for a
// transient reason (the JWKS or introspection endpoint is down). The client
// gets 503 with Retry-After, never a 401 that would send it into
// re-authorization.
var ErrUnavailable = errors.New("authz: token verification temporarily unavailable")

// ErrInvalidToken marks a token that was checked and refused. Its message is
// safe to show the client as error_description: it never contains the token.
var ErrInvalidToken = errors.New("invalid token")

// ErrNotFound is what a store returns for no such record, or one that
// expired. Implementations return it (wrapped or not) and never their
// backend's own "missing" values.
var ErrNotFound = errors.New("authz: not found")
