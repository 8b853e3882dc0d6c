package as

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/remotemcp/remotemcp/authz"
)

// Revoke revokes a refresh or access token of client c ([RFC 7009 §2.1]):
// the whole grant goes, since a refresh token's family and its access
// tokens stand or fall together. A token that is unknown, invalid or
// another client's is ignored, as RFC 7009 §2.2 asks.
//
// [RFC 7009 §2.1]: https://www.rfc-editor.org/rfc/rfc7009#section-2.1
func (s *Server) Revoke(ctx context.Context, c *Client, token, hint string) error {
	tryRefresh := func() (bool, error) {
		grantID, clientID, err := s.st.Refresh.LookupRefresh(ctx, hashToken(token))
		if errors.Is(err, authz.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if clientID != c.ClientID {
			return true, nil
		}
		return true, s.revokeGrant(ctx, grantID)
	}
	tryAccess := func() (bool, error) {
		if strings.Count(token, ".") != 2 {
			return false, nil
		}
		info, err := s.tokens.Verify(ctx, token)
		if errors.Is(err, authz.ErrUnavailable) {
			return false, err
		}
		if err != nil {
			return false, nil
		}
		if cid, _ := info.Extra["client_id"].(string); cid != c.ClientID {
			return true, nil
		}
		gid, _ := info.Extra["gid"].(string)
		return true, s.revokeGrant(ctx, gid)
	}
	order := []func() (bool, error){tryRefresh, tryAccess}
	if hint == "access_token" {
		order[0], order[1] = order[1], order[0]
	}
	for _, try := range order {
		if done, err := try(); done || err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	form, c, ok := s.clientRequest(w, r, limitRevoke)
	if !ok {
		return
	}
	token := form.Get("token")
	if token == "" {
		authz.WriteError(w, authz.ErrInvalidRequest("token is required"))
		return
	}
	if err := s.Revoke(r.Context(), c, token, form.Get("token_type_hint")); err != nil {
		s.tokenFailed(w, r, err)
		return
	}
	s.event(Event{Kind: EventRevocation})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// IntrospectionResponse is the body of an introspection response ([RFC
// 7662 §2.2]).
//
// [RFC 7662 §2.2]: https://www.rfc-editor.org/rfc/rfc7662#section-2.2
type IntrospectionResponse struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Audience  string `json:"aud,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	ExpiresAt int64  `json:"exp,omitempty"`
	TokenType string `json:"token_type,omitempty"`
}

// Introspect answers for an access token ([RFC 7662]). Only confidential
// clients may ask (a public client's "authentication" proves nothing), and
// only about their own tokens: anything else is inactive.
//
// [RFC 7662]: https://www.rfc-editor.org/rfc/rfc7662
func (s *Server) Introspect(ctx context.Context, c *Client, token string) (*IntrospectionResponse, error) {
	if c.SecretHash == "" {
		return nil, authz.ErrInvalidClient("introspection needs a confidential client")
	}
	info, err := s.tokens.Verify(ctx, token)
	if errors.Is(err, authz.ErrUnavailable) {
		return nil, err
	}
	if err != nil {
		return &IntrospectionResponse{Active: false}, nil
	}
	cid, _ := info.Extra["client_id"].(string)
	if cid != c.ClientID {
		return &IntrospectionResponse{Active: false}, nil
	}
	return &IntrospectionResponse{
		Active: true, Scope: strings.Join(info.Scopes, " "), ClientID: cid, Subject: info.UserID,
		Audience: s.o.Resource, Issuer: s.o.Issuer, ExpiresAt: info.Expiration.Unix(), TokenType: "Bearer",
	}, nil
}

func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	form, c, ok := s.clientRequest(w, r, limitIntrospect)
	if !ok {
		return
	}
	if form.Get("token") == "" {
		authz.WriteError(w, authz.ErrInvalidRequest("token is required"))
		return
	}
	resp, err := s.Introspect(r.Context(), c, form.Get("token"))
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
