package as

import (
	"net/http"
	"net/http/httptest"

	"github.com/remotemcp/remotemcp/authz"
)

// HashToken is hashToken, for tests that look records up in a store.
var HashToken = hashToken

// PageError reports whether err is an error shown to the user as a page,
// with the page's status and title.
func PageError(err error) (status int, title string, ok bool) {
	e, ok := err.(*errPage)
	if !ok {
		return 0, "", false
	}
	return e.status, e.title, true
}

// PageDetail is the text of an error shown as a page, or "".
func PageDetail(err error) string {
	if e, ok := err.(*errPage); ok {
		return e.detail
	}
	return ""
}

// RedirectError reports whether err is an error sent back to the client's
// redirect URI, with that URI, the client's state and the OAuth error.
func RedirectError(err error) (redirectURI, state string, oe *authz.Error, ok bool) {
	e, ok := err.(*redirectErr)
	if !ok {
		return "", "", nil, false
	}
	return e.redirectURI, e.state, e.err, true
}

// UserCookie is the cookie our callback sets for a browser signed in as
// subject.
func (s *Server) UserCookie(subject string) *http.Cookie {
	w := httptest.NewRecorder()
	s.setUserCookie(w, subject)
	return w.Result().Cookies()[0]
}
