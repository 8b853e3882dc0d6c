package devidp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// A tokenRequest is a decoded token request ([RFC 6749 §4.1.3], [RFC 6749
// §6]) with the client's credentials, from either the Authorization header
// or the body ([RFC 6749 §2.3.1]).
//
// [RFC 6749 §4.1.3]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
// [RFC 6749 §6]: https://www.rfc-editor.org/rfc/rfc6749#section-6
// [RFC 6749 §2.3.1]: https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
type tokenRequest struct {
	grantType    string
	code         string
	redirectURI  string
	codeVerifier string
	refreshToken string
	scope        string
	clientID     string
	clientSecret string
}

// A tokenResponse is a successful token response ([RFC 6749 §5.1]).
//
// [RFC 6749 §5.1]: https://www.rfc-editor.org/rfc/rfc6749#section-5.1
type tokenResponse struct {
	// AccessToken is the JSON "access_token": opaque. REQUIRED.
	AccessToken string `json:"access_token"`
	// TokenType is the JSON "token_type": always "Bearer". REQUIRED.
	TokenType string `json:"token_type"`
	// ExpiresIn is the JSON "expires_in", in seconds. RECOMMENDED.
	ExpiresIn int64 `json:"expires_in"`
	// RefreshToken is the JSON "refresh_token": opaque, single-use. OPTIONAL.
	RefreshToken string `json:"refresh_token,omitempty"`
	// Scope is the JSON "scope" of the access token. OPTIONAL.
	Scope string `json:"scope,omitempty"`
}

// token serves POST <issuer path>/token.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	req, err := decodeTokenRequest(w, r)
	var resp *tokenResponse
	if err == nil {
		resp, err = p.exchange(r.Context(), req)
	}
	if err != nil {
		e := asOAuth(err)
		p.log.Info("dev-idp: token request refused", "error", e.Code, "description", e.Description)
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// decodeTokenRequest reads a token request: a form body with no repeated
// parameter, and the client's credentials by exactly one method.
func decodeTokenRequest(w http.ResponseWriter, r *http.Request) (*tokenRequest, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oauthErr(invalidRequest, "the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return nil, oauthErr(invalidRequest, "the body could not be parsed")
	}
	f := r.PostForm
	for k, vs := range f {
		if len(vs) > 1 {
			return nil, oauthErr(invalidRequest, k+" must not be repeated")
		}
	}
	req := &tokenRequest{
		grantType:    f.Get("grant_type"),
		code:         f.Get("code"),
		redirectURI:  f.Get("redirect_uri"),
		codeVerifier: f.Get("code_verifier"),
		refreshToken: f.Get("refresh_token"),
		scope:        f.Get("scope"),
		clientID:     f.Get("client_id"),
		clientSecret: f.Get("client_secret"),
	}
	if r.Header.Get("Authorization") == "" {
		return req, nil // client_secret_post, or no authentication
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil, oauthErr(invalidClient, "the Authorization header must use the Basic scheme")
	}
	if req.clientSecret != "" {
		return nil, oauthErr(invalidRequest, "use one client authentication method, not both")
	}
	// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, oauthErr(invalidClient, "malformed Basic credentials")
	}
	if req.clientID != "" && req.clientID != id {
		return nil, oauthErr(invalidRequest, "client_id does not match the Authorization header")
	}
	req.clientID, req.clientSecret = id, secret
	return req, nil
}

// exchange authenticates the client and runs the grant.
func (p *Provider) exchange(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	if !p.authenticate(req.clientID, req.clientSecret) {
		return nil, oauthErr(invalidClient, "client authentication failed")
	}
	now := p.now()
	out := issued{
		access: newSecret(), refresh: newSecret(),
		accessExpires: now.Add(p.accessTTL), refreshExpires: now.Add(p.refreshTTL),
	}
	var (
		g     grant
		scope string
		err   error
		what  string // for messages
	)
	switch req.grantType {
	case "authorization_code":
		what = "authorization code"
		if req.code == "" || req.redirectURI == "" || req.codeVerifier == "" {
			return nil, oauthErr(invalidRequest, "code, redirect_uri and code_verifier are required")
		}
		g, err = p.store.redeemCode(ctx, req.code, now, func(c code) error { return checkCode(c, req) }, out)
		scope = g.scope
	case "refresh_token":
		what = "refresh token"
		if req.refreshToken == "" {
			return nil, oauthErr(invalidRequest, "refresh_token is required")
		}
		g, err = p.store.rotate(ctx, req.refreshToken, now, func(t token) (string, error) {
			s, err := checkRefresh(t, req)
			scope = s
			return s, err
		}, out)
	case "":
		return nil, oauthErr(invalidRequest, "grant_type is required")
	default:
		return nil, oauthErr(unsupportedGrantType, "grant_type must be authorization_code or refresh_token")
	}
	switch {
	case errors.Is(err, errNotFound):
		return nil, oauthErr(invalidGrant, "the "+what+" is invalid, expired or revoked")
	case errors.Is(err, errReused):
		p.log.Warn("dev-idp: "+what+" reused; its grant is revoked", "user", g.username, "grant", logID(g.id))
		return nil, oauthErr(invalidGrant, "the "+what+" was already used; every token issued from it is revoked")
	case err != nil:
		return nil, err
	}
	p.log.Info("dev-idp: tokens issued", "grant_type", req.grantType, "user", g.username, "access_token", logID(out.access), "refresh_token", logID(out.refresh))
	return &tokenResponse{
		AccessToken:  out.access,
		TokenType:    "Bearer",
		ExpiresIn:    int64(p.accessTTL / time.Second),
		RefreshToken: out.refresh,
		Scope:        scope,
	}, nil
}

// checkCode checks a code redemption against the code ([RFC 6749 §4.1.3],
// [RFC 7636 §4.6]).
//
// [RFC 6749 §4.1.3]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
// [RFC 7636 §4.6]: https://www.rfc-editor.org/rfc/rfc7636#section-4.6
func checkCode(c code, req *tokenRequest) error {
	switch {
	case c.clientID != req.clientID:
		return oauthErr(invalidGrant, "the authorization code was issued to another client")
	case c.redirectURI != req.redirectURI:
		return oauthErr(invalidGrant, "redirect_uri does not match the authorization request")
	case !verifyPKCE(req.codeVerifier, c.challenge):
		return oauthErr(invalidGrant, "code_verifier does not match the code_challenge")
	}
	return nil
}

// checkRefresh checks a refresh against the refresh token and returns the
// new access token's scope: the requested one, which must be within the
// grant, or the whole grant ([RFC 6749 §6]).
//
// [RFC 6749 §6]: https://www.rfc-editor.org/rfc/rfc6749#section-6
func checkRefresh(t token, req *tokenRequest) (string, error) {
	if t.clientID != req.clientID {
		return "", oauthErr(invalidGrant, "the refresh token was issued to another client")
	}
	if req.scope == "" {
		return t.scope, nil
	}
	scope, err := parseScope(req.scope)
	if err != nil {
		return "", err
	}
	granted := strings.Fields(t.scope)
	for tok := range strings.SplitSeq(scope, " ") {
		if tok != "" && !slices.Contains(granted, tok) {
			return "", oauthErr(invalidScope, "scope '"+tok+"' was not granted")
		}
	}
	return scope, nil
}

// authenticate reports whether id and secret are the client's, in
// constant time: both are compared through their SHA-256, so neither
// their contents nor their lengths leak.
func (p *Provider) authenticate(id, secret string) bool {
	if id == "" {
		return false
	}
	idOK := equalSecret(id, p.clientID)
	secretOK := equalSecret(secret, p.clientSecret)
	return idOK && secretOK
}

func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
