package authz

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// OAuth error codes of the authorization-server half. InvalidRequest is
// shared with RFC 6750 and declared in errors.go.
//
// [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
// [RFC 6749 §4.1.2.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
// [RFC 7591 §3.2.2]: https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2
const (
	// RFC 6749 §5.2 (token endpoint).
	InvalidClient        Code = "invalid_client"
	InvalidGrant         Code = "invalid_grant"
	UnauthorizedClient   Code = "unauthorized_client"
	UnsupportedGrantType Code = "unsupported_grant_type"
	InvalidScope         Code = "invalid_scope"

	// RFC 6749 §4.1.2.1 (authorization endpoint).
	AccessDenied            Code = "access_denied"
	UnsupportedResponseType Code = "unsupported_response_type"
	ServerError             Code = "server_error"
	TemporarilyUnavailable  Code = "temporarily_unavailable"

	// RFC 8707 §2 (a resource we do not issue tokens for).
	InvalidTarget Code = "invalid_target"

	// RFC 7591 §3.2.2 (registration endpoint).
	InvalidRedirectURI    Code = "invalid_redirect_uri"
	InvalidClientMetadata Code = "invalid_client_metadata"
)

// An Error is an OAuth error as sent on the wire (RFC 6749 §5.2, RFC 7591
// §3.2.2). Build one with a constructor such as ErrInvalidRequest, so that
// no shared value can be changed, and render it with WriteError.
type Error struct {
	// Code is the JSON "error". REQUIRED.
	Code Code `json:"error"`
	// Description is the JSON "error_description": a human-readable hint
	// for the client developer. OPTIONAL. It must never hold a secret.
	Description string `json:"error_description,omitempty"`
	// URI is the JSON "error_uri": a page about the error. OPTIONAL.
	URI string `json:"error_uri,omitempty"`
	// Status is the HTTP status; zero means the code's default (401 for
	// invalid_client, 500 server_error, 503 temporarily_unavailable, 403
	// access_denied, else 400). Not serialized.
	Status int `json:"-"`
}

// Error implements error.
func (e *Error) Error() string {
	if e.Description == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Description
}

func newError(code Code, status int, desc string) *Error {
	return &Error{Code: code, Description: desc, Status: status}
}

// ErrInvalidRequest is a 400 invalid_request: a missing, repeated or
// malformed parameter.
func ErrInvalidRequest(desc string) *Error {
	return newError(InvalidRequest, http.StatusBadRequest, desc)
}

// ErrInvalidClient is a 401 invalid_client: client authentication failed.
func ErrInvalidClient(desc string) *Error {
	return newError(InvalidClient, http.StatusUnauthorized, desc)
}

// ErrInvalidGrant is a 400 invalid_grant: the code or refresh token is
// invalid, expired, revoked, or was issued to another client or
// redirect_uri.
func ErrInvalidGrant(desc string) *Error {
	return newError(InvalidGrant, http.StatusBadRequest, desc)
}

// ErrUnauthorizedClient is a 400 unauthorized_client: this client may not
// use this grant or response type.
func ErrUnauthorizedClient(desc string) *Error {
	return newError(UnauthorizedClient, http.StatusBadRequest, desc)
}

// ErrUnsupportedGrantType is a 400 unsupported_grant_type.
func ErrUnsupportedGrantType(desc string) *Error {
	return newError(UnsupportedGrantType, http.StatusBadRequest, desc)
}

// ErrInvalidScope is a 400 invalid_scope: the scope is unknown, malformed
// or exceeds what was granted.
func ErrInvalidScope(desc string) *Error {
	return newError(InvalidScope, http.StatusBadRequest, desc)
}

// ErrAccessDenied is an access_denied: the user or the server refused.
// Rendered as JSON it is a 403.
func ErrAccessDenied(desc string) *Error {
	return newError(AccessDenied, http.StatusForbidden, desc)
}

// ErrUnsupportedResponseType is a 400 unsupported_response_type.
func ErrUnsupportedResponseType(desc string) *Error {
	return newError(UnsupportedResponseType, http.StatusBadRequest, desc)
}

// ErrServerError is a 500 server_error. Its description is sent to the
// client: keep internal details out of it.
func ErrServerError(desc string) *Error {
	return newError(ServerError, http.StatusInternalServerError, desc)
}

// ErrTemporarilyUnavailable is a 503 temporarily_unavailable: retry later.
func ErrTemporarilyUnavailable(desc string) *Error {
	return newError(TemporarilyUnavailable, http.StatusServiceUnavailable, desc)
}

// ErrInvalidRedirectURI is a 400 invalid_redirect_uri (RFC 7591 §3.2.2).
func ErrInvalidRedirectURI(desc string) *Error {
	return newError(InvalidRedirectURI, http.StatusBadRequest, desc)
}

// ErrInvalidTarget is a 400 invalid_target (RFC 8707 §2): the requested
// resource is not one we issue tokens for.
func ErrInvalidTarget(desc string) *Error {
	return newError(InvalidTarget, 0, desc)
}

// ErrInvalidClientMetadata is a 400 invalid_client_metadata (RFC 7591
// §3.2.2).
func ErrInvalidClientMetadata(desc string) *Error {
	return newError(InvalidClientMetadata, http.StatusBadRequest, desc)
}

// basicRealm is the realm of the challenge sent with invalid_client.
const basicRealm = "remotemcp"

// WriteError renders err as an OAuth error response: a JSON body, with
// Cache-Control: no-store and Pragma: no-cache (RFC 6749 §5.1).
//
// If err is or wraps an *Error, that Error is written, never the text of
// what wraps it. Anything else becomes a 500 server_error with no
// description: internal causes are never shown to the client (log them
// before calling). invalid_client is always a 401 with a Basic challenge
// (RFC 6749 §5.2). The description and URI are cut down to the characters
// RFC 6749 allows in them.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) || e == nil || e.Code == "" {
		e = &Error{Code: ServerError}
	}
	out := Error{
		Code:        e.Code,
		Description: WireText(e.Description),
		URI:         WireText(e.URI),
		Status:      e.Status,
	}
	if out.Status < 400 || out.Status > 599 {
		out.Status = defaultStatus(out.Code)
	}
	h := w.Header()
	if out.Code == InvalidClient {
		out.Status = http.StatusUnauthorized
		h.Set("WWW-Authenticate", `Basic realm="`+basicRealm+`"`)
	}
	body, merr := json.Marshal(&out)
	if merr != nil { // unreachable: the struct only holds strings
		out = Error{Code: ServerError, Status: http.StatusInternalServerError}
		body = []byte(`{"error":"server_error"}`)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(out.Status)
	_, _ = w.Write(body)
}

// defaultStatus is the HTTP status of an Error whose Status is not set.
func defaultStatus(c Code) int {
	switch c {
	case InvalidClient, InvalidToken:
		return http.StatusUnauthorized
	case AccessDenied, InsufficientScope:
		return http.StatusForbidden
	case ServerError:
		return http.StatusInternalServerError
	case TemporarilyUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// WireText keeps the characters RFC 6749 §5.2 allows in error_description
// and error_uri (%x20-21 / %x23-5B / %x5D-7E), replacing others with '?'.
func WireText(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !wireChar(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && wireChar(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

func wireChar(c byte) bool {
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'
}
