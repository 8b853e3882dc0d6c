package tokencheck

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/remotemcp/remotemcp/authz"
)

// Invalid returns an ErrInvalidToken with a description.
func Invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", authz.ErrInvalidToken, fmt.Sprintf(format, args...))
}

// Description is the error_description for err: what follows the sentinel.
func Description(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, authz.ErrInvalidToken.Error()+": "); i >= 0 {
		msg = msg[i+len(authz.ErrInvalidToken.Error())+2:]
	}
	return msg
}

// JWTReason turns a jwx validation error into a short description that never
// quotes the token.
func JWTReason(err error) string {
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return "the token has expired"
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return "the token is not valid yet"
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return "the token was issued in the future"
	case errors.Is(err, jwt.InvalidIssuerError()):
		return "the token was issued by another authorization server"
	case strings.Contains(err.Error(), `"exp" not satisfied`), strings.Contains(err.Error(), "required claim"):
		return "the token has no expiry"
	case strings.Contains(err.Error(), "verif"):
		return "the signature does not verify"
	}
	return "the token is not valid"
}
