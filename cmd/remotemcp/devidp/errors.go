package devidp

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// OAuth error codes ([RFC 6749 §5.2], [RFC 6749 §4.1.2.1], [RFC 6750 §3.1]).
//
// [RFC 6749 §5.2]: https://www.rfc-editor.org/rfc/rfc6749#section-5.2
// [RFC 6749 §4.1.2.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
// [RFC 6750 §3.1]: https://www.rfc-editor.org/rfc/rfc6750#section-3.1
const (
	invalidRequest          = "invalid_request"
	invalidClient           = "invalid_client"
	invalidGrant            = "invalid_grant"
	unsupportedGrantType    = "unsupported_grant_type"
	invalidScope            = "invalid_scope"
	accessDenied            = "access_denied"
	unsupportedResponseType = "unsupported_response_type"
	serverError             = "server_error"
	temporarilyUnavailable  = "temporarily_unavailable"
	invalidToken            = "invalid_token"
)

// An oauthError is an OAuth error as sent on the wire. Build one with
// oauthErr so that no shared value can be changed.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	status      int
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

// oauthErr returns an error with code and description, which must hold
// no secret. The status is 401
// for invalid_client and invalid_token, 503 for temporarily_unavailable,
// 500 for server_error, else 400.
func oauthErr(code, desc string) *oauthError {
	status := http.StatusBadRequest
	switch code {
	case invalidClient, invalidToken:
		status = http.StatusUnauthorized
	case temporarilyUnavailable:
		status = http.StatusServiceUnavailable
	case serverError:
		status = http.StatusInternalServerError
	}
	return &oauthError{Code: code, Description: wireText(desc), status: status}
}

// wireText keeps the characters RFC 6749 §5.2 allows in error_description
// (%x20-21 / %x23-5B / %x5D-7E), replacing others with '?': descriptions
// may quote what the client sent.
func wireText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}

// asOAuth returns err as an oauthError. errFull becomes
// temporarily_unavailable; anything else unknown becomes a server_error
// with no description, so that no internal detail reaches the client.
func asOAuth(err error) *oauthError {
	var e *oauthError
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, errFull):
		return oauthErr(temporarilyUnavailable, "too many outstanding requests; try again later")
	}
	return oauthErr(serverError, "")
}

// writeError renders err as a JSON OAuth error (RFC 6749 §5.2).
// invalid_client carries a Basic challenge.
func writeError(w http.ResponseWriter, err error) {
	e := asOAuth(err)
	if e.Code == invalidClient {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	}
	writeJSON(w, e.status, e)
}

// realm is the realm of every challenge the provider sends.
const realm = "dev-idp"

// writeJSON writes v with Cache-Control: no-store (RFC 6749 §5.1).
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // unreachable: every response holds strings and numbers
		status, body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// errorRedirect is where an authorization error goes once the redirect URI
// is known to be the client's: its query gets error, error_description,
// state (if any) and iss ([RFC 6749 §4.1.2.1], [RFC 9207]).
//
// [RFC 6749 §4.1.2.1]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
// [RFC 9207]: https://www.rfc-editor.org/rfc/rfc9207
func (p *Provider) errorRedirect(redirectURI, state string, err error) string {
	e := asOAuth(err)
	v := url.Values{"error": {e.Code}}
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	if state != "" {
		v.Set("state", state)
	}
	return p.redirectTo(redirectURI, v)
}

// redirectTo adds params, and iss, to the query of redirectURI, keeping
// the query it has.
func (p *Provider) redirectTo(redirectURI string, params url.Values) string {
	u, err := url.Parse(redirectURI)
	if err != nil { // unreachable: New parsed every redirect URI
		return redirectURI
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	q.Set("iss", p.issuer)
	u.RawQuery = q.Encode()
	return u.String()
}
