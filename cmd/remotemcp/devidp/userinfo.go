package devidp

import (
	"context"
	"net/http"
	"slices"
	"strings"
)

// userInfo is the userinfo response ([OpenID Connect Core 1.0 §5.3.2]).
// Which claims appear depends on the access token's scope, as with a real
// provider: sub always, preferred_username and name with "profile", email
// with "email" (if the user gave one).
//
// [OpenID Connect Core 1.0 §5.3.2]: https://openid.net/specs/openid-connect-core-1_0.html#UserInfoResponse
type userInfo struct {
	// Subject is the JSON "sub": "dev|" + the username, stable per
	// username; the prefix keeps development users apart from real ones.
	// REQUIRED.
	Subject string `json:"sub"`
	// PreferredUsername is the JSON "preferred_username": the username.
	// OPTIONAL.
	PreferredUsername string `json:"preferred_username,omitempty"`
	// Name is the JSON "name": the username. OPTIONAL.
	Name string `json:"name,omitempty"`
	// Email is the JSON "email", as typed on the login page. OPTIONAL.
	// No email_verified claim is made either way: nobody checked the
	// address, but the developer typed it to see it used.
	Email string `json:"email,omitempty"`
}

// subjectPrefix starts every sub.
const subjectPrefix = "dev|"

// userinfo serves GET and POST <issuer path>/userinfo. The access token
// comes in the Authorization header only ([RFC 6750 §2.1]).
//
// [RFC 6750 §2.1]: https://www.rfc-editor.org/rfc/rfc6750#section-2.1
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		// RFC 6750 §3.1: no error code when the request has no token.
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	info, err := p.userInfo(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		e := asOAuth(err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="`+e.Code+`", error_description="`+e.Description+`"`)
		writeJSON(w, e.status, e)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// userInfo returns the claims of the user the access token is about.
func (p *Provider) userInfo(ctx context.Context, accessToken string) (*userInfo, error) {
	t, err := p.store.access(ctx, accessToken, p.now())
	if err != nil {
		return nil, oauthErr(invalidToken, "the access token is invalid, expired or revoked")
	}
	scopes := strings.Fields(t.scope)
	info := &userInfo{Subject: subjectPrefix + t.username}
	if slices.Contains(scopes, "profile") {
		info.PreferredUsername, info.Name = t.username, t.username
	}
	if slices.Contains(scopes, "email") && t.email != "" {
		info.Email = t.email
	}
	return info, nil
}
