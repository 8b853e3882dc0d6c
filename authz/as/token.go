package as

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/token"
)

// maxFormBytes bounds the body of token, revocation and introspection
// requests.
const maxFormBytes = 16 << 10

// TokenRequest is a token request ([RFC 6749 §4.1.3], [§6]) after client
// authentication.
//
// [RFC 6749 §4.1.3]: https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
// [§6]: https://www.rfc-editor.org/rfc/rfc6749#section-6
type TokenRequest struct {
	Client       *Client
	GrantType    string
	Code         string
	RedirectURI  string
	CodeVerifier string
	RefreshToken string
	Scope        string
	Resource     []string
}

// TokenResponse is the body of a successful token response ([RFC 6749
// §5.1]).
//
// [RFC 6749 §5.1]: https://www.rfc-editor.org/rfc/rfc6749#section-5.1
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// Exchange runs a token request. A refresh, when Options.Allow is set or
// the grant carries groups, first asks the upstream again who the user is
// (see readmit): a user the allow-list no longer admits gets
// invalid_grant and the grant is revoked.
func (s *Server) Exchange(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	for _, res := range req.Resource {
		if !s.resourceOK(res) {
			return nil, authz.ErrInvalidTarget("this server issues tokens only for " + s.o.Resource)
		}
	}
	if len(req.Resource) > 1 {
		return nil, authz.ErrInvalidTarget("only one resource may be requested")
	}
	switch req.GrantType {
	case grantAuthorizationCode:
		return s.exchangeCode(ctx, req)
	case grantRefreshToken:
		return s.exchangeRefresh(ctx, req)
	case "":
		return nil, authz.ErrInvalidRequest("grant_type is required")
	default:
		return nil, authz.ErrUnsupportedGrantType("grant_type must be authorization_code or refresh_token")
	}
}

func (s *Server) exchangeCode(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	if req.Code == "" || req.CodeVerifier == "" {
		return nil, authz.ErrInvalidRequest("code and code_verifier are required")
	}
	c, err := s.st.Codes.TakeCode(ctx, hashToken(req.Code))
	switch {
	case errors.Is(err, ErrAlreadyUsed) && c != nil:
		// A replayed code: whoever redeemed it first may be an attacker
		// (or the client is confused); either way, revoke everything it
		// issued (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3).
		if rerr := s.revokeGrant(ctx, c.GrantID); rerr != nil {
			return nil, rerr
		}
		s.log.WarnContext(ctx, "authz: authorization code replayed; grant revoked", "client_id", c.ClientID, "grant", c.GrantID)
		return nil, authz.ErrInvalidGrant("the authorization code was already used")
	case errors.Is(err, authz.ErrNotFound) || errors.Is(err, ErrAlreadyUsed):
		return nil, authz.ErrInvalidGrant("the authorization code is invalid or expired")
	case err != nil:
		return nil, err
	}
	switch {
	case c.ClientID != req.Client.ClientID:
		return nil, authz.ErrInvalidGrant("the authorization code was issued to another client")
	case req.RedirectURI != "" && req.RedirectURI != c.RedirectURI:
		return nil, authz.ErrInvalidGrant("redirect_uri does not match the authorization request")
	case !verifyPKCE(req.CodeVerifier, c.CodeChallenge):
		return nil, authz.ErrInvalidGrant("code_verifier does not match the code_challenge")
	case s.o.Now().After(c.ExpiresAt):
		return nil, authz.ErrInvalidGrant("the authorization code is invalid or expired")
	}
	if err := s.keepSignIn(ctx, c); err != nil {
		return nil, err
	}
	refresh, hash, err := newRefreshToken(s.o.Rand)
	if err != nil {
		return nil, err
	}
	if err := s.st.Refresh.IssueRefresh(ctx, c.GrantID, c.ClientID, hash, s.o.RefreshTTL); err != nil {
		return nil, err
	}
	s.touch(ctx, req.Client)
	return s.accessToken(c.Subject, c.ClientID, c.Scopes, c.GrantID, refresh, token.UserClaims{Email: c.Email, Groups: c.Groups})
}

func (s *Server) exchangeRefresh(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	if req.RefreshToken == "" {
		return nil, authz.ErrInvalidRequest("refresh_token is required")
	}
	presented := hashToken(req.RefreshToken)
	grantID, clientID, err := s.st.Refresh.LookupRefresh(ctx, presented)
	if errors.Is(err, authz.ErrNotFound) {
		return nil, authz.ErrInvalidGrant("the refresh token is invalid, expired or revoked")
	}
	if err != nil {
		return nil, err
	}
	if clientID != req.Client.ClientID {
		// Not this client's token: refuse without touching the family
		// (the rightful client must not be logged out by someone else).
		return nil, authz.ErrInvalidGrant("the refresh token was issued to another client")
	}
	g, err := s.st.Grants.GetGrant(ctx, grantID)
	if errors.Is(err, authz.ErrNotFound) {
		return nil, authz.ErrInvalidGrant("the grant was revoked or expired")
	}
	if err != nil {
		return nil, err
	}
	if revoked, err := s.st.Grants.GrantRevoked(ctx, grantID); err != nil {
		return nil, err
	} else if revoked {
		return nil, authz.ErrInvalidGrant("the grant was revoked")
	}
	if g, err = s.readmit(ctx, g); err != nil {
		return nil, err
	}
	scopes := g.Scopes
	if req.Scope != "" { // narrowing only (RFC 6749 §6)
		asked := authz.ParseScope(req.Scope)
		if !subset(asked, g.Scopes) {
			return nil, authz.ErrInvalidScope("a refresh cannot add scopes; authorize again for more")
		}
		scopes = asked
	}
	// Before the rotation: the refused refresh token stays valid.
	if err := s.checkStepUp(ctx, g, scopes); err != nil {
		return nil, err
	}
	refresh, hash, err := newRefreshToken(s.o.Rand)
	if err != nil {
		return nil, err
	}
	_, res, err := s.st.Refresh.RotateRefresh(ctx, RefreshRotation{
		PresentedHash: presented, NewHash: hash, ClientID: clientID,
		Now: s.o.Now(), Grace: s.o.RefreshGrace, TTL: s.o.RefreshTTL,
	})
	if errors.Is(err, authz.ErrNotFound) {
		return nil, authz.ErrInvalidGrant("the refresh token is invalid, expired or revoked")
	}
	if err != nil {
		return nil, err
	}
	if res == Reused {
		s.event(Event{Kind: EventRefreshReuse})
		if err := s.revokeGrant(ctx, grantID); err != nil {
			return nil, err
		}
		s.log.WarnContext(ctx, "authz: refresh token reused outside the grace window; grant revoked", "client_id", clientID, "grant", grantID)
		return nil, authz.ErrInvalidGrant("the refresh token was already used")
	}
	// Keep the grant alive while it is used.
	if err := s.st.Grants.PutGrant(ctx, g, s.o.RefreshTTL); err != nil {
		return nil, err
	}
	s.touch(ctx, req.Client)
	return s.accessToken(g.Subject, g.ClientID, scopes, g.ID, refresh, token.UserClaims{Email: g.Email, Groups: g.Groups})
}

func (s *Server) accessToken(subject, clientID string, scopes []string, grantID, refresh string, user token.UserClaims) (*TokenResponse, error) {
	at, _, exp, err := s.tokens.MintAccessTokenFor(subject, clientID, scopes, grantID, user)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{
		AccessToken:  at,
		TokenType:    "Bearer",
		ExpiresIn:    int64(exp.Sub(s.o.Now()).Round(time.Second) / time.Second),
		RefreshToken: refresh,
		Scope:        strings.Join(scopes, " "),
	}, nil
}

// revokeGrant revokes a grant: its tokens, its refresh family and its
// upstream tokens.
func (s *Server) revokeGrant(ctx context.Context, grantID string) error {
	return s.st.Grants.RevokeGrant(ctx, grantID)
}

// touch extends an unused-registration expiry for a registered client,
// and tells the metadata fetcher that a document's client was used.
func (s *Server) touch(ctx context.Context, c *Client) {
	if isDocumentClientID(c.ClientID) {
		if s.o.Metadata != nil {
			s.o.Metadata.Used(ctx, c.ClientID) // a metadata-document client is not stored
		}
		return
	}
	_ = s.st.Clients.TouchClient(ctx, c.ClientID, s.o.ClientTTL)
}

// parseForm reads an application/x-www-form-urlencoded body, refusing
// repeated parameters (RFC 6749 §3.2) other than resource.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, authz.ErrInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, authz.ErrInvalidRequest("the body could not be read")
	}
	if len(r.URL.RawQuery) > 0 {
		return nil, authz.ErrInvalidRequest("parameters belong in the body, not the URL")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 && k != "resource" {
			return nil, authz.ErrInvalidRequest("the parameter " + k + " is repeated")
		}
	}
	return r.PostForm, nil
}

// authenticateClient authenticates the client of a token, revocation or
// introspection request (RFC 6749 §2.3): HTTP Basic or client_secret in
// the body for a confidential client, client_id alone for a public one.
// The method must be the one the client registered.
//
// With fetch false (revocation, introspection), a client_id that is a
// metadata document URL is not fetched: such a client is public (a
// document holds no secret), so its document would authenticate nothing,
// and the request is answered from the token alone (RFC 7009 §2.2: a
// token that is not the client's is ignored; RFC 7662: introspection
// needs a confidential client). So those endpoints cannot be used to fill
// the document cache.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values, fetch bool) (*Client, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id) // RFC 6749 §2.3.1 form-encodes them
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, authz.ErrInvalidClient("malformed client credentials")
		}
		if f := form.Get("client_id"); f != "" && f != id {
			return nil, authz.ErrInvalidRequest("client_id differs from the authenticated client")
		}
		if form.Has("client_secret") {
			return nil, authz.ErrInvalidRequest("use one client authentication method")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return nil, authz.ErrInvalidClient("client authentication is required")
	}
	var c *Client
	var err error
	if !fetch && isDocumentClientID(id) {
		c, err = s.documentClient(id)
	} else {
		c, err = s.client(ctx, id)
	}
	if errors.Is(err, authz.ErrNotFound) {
		return nil, authz.ErrInvalidClient("unknown client")
	}
	var oe *authz.Error
	if errors.As(err, &oe) {
		return nil, authz.ErrInvalidClient("the client's metadata document could not be used")
	}
	if err != nil {
		return nil, err
	}
	method := c.Metadata.TokenEndpointAuthMethod
	switch {
	case c.SecretHash == "" && (basic || secret != ""):
		return nil, authz.ErrInvalidClient("this client is public and has no secret")
	case c.SecretHash != "" && secret == "":
		return nil, authz.ErrInvalidClient("client authentication is required")
	case c.SecretHash != "" && !hashEqual(c.SecretHash, hashToken(secret)):
		return nil, authz.ErrInvalidClient("client authentication failed")
	case c.SecretHash != "" && basic && method != authMethodClientSecretBasic,
		c.SecretHash != "" && !basic && method != authMethodClientSecretPost:
		return nil, authz.ErrInvalidClient("the client registered another authentication method")
	}
	return c, nil
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	form, c, ok := s.clientRequest(w, r, limitToken)
	if !ok {
		return
	}
	resp, err := s.Exchange(r.Context(), &TokenRequest{
		Client: c, GrantType: form.Get("grant_type"), Code: form.Get("code"), RedirectURI: form.Get("redirect_uri"),
		CodeVerifier: form.Get("code_verifier"), RefreshToken: form.Get("refresh_token"), Scope: form.Get("scope"),
		Resource: form["resource"],
	})
	s.event(tokenEvent(form.Get("grant_type"), err))
	if err != nil {
		s.tokenFailed(w, r, err)
		return
	}
	body, err := json.Marshal(resp)
	if err != nil {
		authz.WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// tokenFailed writes an error of the token endpoint; anything that is not
// an OAuth error is a store or upstream failure: logged, and answered as
// temporarily unavailable so that clients retry rather than re-authorize.
// clientRequest starts /token, /revoke and /introspect alike: the
// per-address limit, the form, the per-client limit and the client's
// authentication. ok is false when it has already answered.
func (s *Server) clientRequest(w http.ResponseWriter, r *http.Request, ep limitedEndpoint) (form url.Values, c *Client, ok bool) {
	if s.addressLimited(w, r, ep) {
		return nil, nil, false
	}
	form, err := parseForm(w, r)
	if err != nil {
		authz.WriteError(w, err)
		return nil, nil, false
	}
	if s.clientLimited(w, r, ep, assertedClientID(r, form)) {
		return nil, nil, false
	}
	if c, err = s.authenticateClient(r.Context(), r, form, ep == limitToken); err != nil {
		s.tokenFailed(w, r, err)
		return nil, nil, false
	}
	return form, c, true
}

func (s *Server) tokenFailed(w http.ResponseWriter, r *http.Request, err error) {
	var oe *authz.Error
	if errors.As(err, &oe) {
		authz.WriteError(w, oe)
		return
	}
	s.logErr(r, "token", err)
	w.Header().Set("Retry-After", "5")
	authz.WriteError(w, authz.ErrTemporarilyUnavailable("try again shortly"))
}
