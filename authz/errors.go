package authz

import (
	"errors"
	"fmt"
	"strings"
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

// invalid returns an ErrInvalidToken with a description.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}

// description is the error_description for err: what follows the sentinel.
func description(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ErrInvalidToken.Error()+": "); i >= 0 {
		msg = msg[i+len(ErrInvalidToken.Error())+2:]
	}
	return msg
}

// quote renders an auth-param value as an RFC 7235 quoted-string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			// Control characters cannot appear in a header; drop them.
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
