package as

import (
	"context"
	"errors"
	"time"

	"golang.org/x/oauth2"

	"github.com/remotemcp/remotemcp/authz"
)

// signInMargin is how long past our authorization code's lifetime the
// records of a sign-in stay while the code is unredeemed: time for a token
// request that started just before the code expired to finish.
const signInMargin = time.Minute

// signInTTL is how long the grant and upstream tokens of a sign-in live
// until its code is redeemed.
func (s *Server) signInTTL() time.Duration { return s.o.CodeTTL + signInMargin }

// putSignIn stores the grant and upstream tokens of a sign-in whose code
// is not redeemed yet, for signInTTL: a sign-in abandoned after the
// upstream login (the client never redeems the code) leaves nothing after
// that. keepSignIn gives them their full lifetime.
func (s *Server) putSignIn(ctx context.Context, g *Grant, tok *oauth2.Token) error {
	if err := s.st.Grants.PutGrant(ctx, g, s.signInTTL()); err != nil {
		return err
	}
	if sv, ok := s.vault.(SignInVault); ok {
		return sv.PutSignIn(ctx, g.ID, tok, s.signInTTL())
	}
	return s.vault.Put(ctx, g.ID, tok)
}

// keepSignIn completes a sign-in whose code c is being redeemed: the grant
// lives RefreshTTL, the upstream tokens the vault's lifetime, and the
// grant replaces the one of the same user's previous sign-in with the
// same registered client (revoked: the client signed in again because it
// lost or gave up on that one). A metadata-document client keeps its
// earlier grants: its client_id is shared by every installation of the
// app, so the earlier grant may be another device's. A grant that is gone
// (revoked, or the sign-in expired) is invalid_grant.
func (s *Server) keepSignIn(ctx context.Context, c *AuthCode) error {
	grantID := c.GrantID
	g, err := s.st.Grants.GetGrant(ctx, grantID)
	if errors.Is(err, authz.ErrNotFound) {
		return authz.ErrInvalidGrant("the authorization code is invalid or expired")
	}
	if err != nil {
		return err
	}
	if err := s.st.Grants.PutGrant(ctx, g, s.o.RefreshTTL); err != nil {
		return err
	}
	if sv, ok := s.vault.(SignInVault); ok {
		if err := sv.Keep(ctx, grantID); err != nil && !errors.Is(err, authz.ErrNotFound) {
			return err
		}
	}
	return s.replaceLogin(ctx, c)
}

// replaceLogin revokes the grant that c's grant replaces (see keepSignIn).
func (s *Server) replaceLogin(ctx context.Context, c *AuthCode) error {
	idx, ok := s.st.Grants.(LoginIndex)
	if !ok || isDocumentClientID(c.ClientID) {
		return nil
	}
	prev, err := idx.SwapLogin(ctx, c.Subject, c.ClientID, c.GrantID, s.o.RefreshTTL)
	if err != nil || prev == "" || prev == c.GrantID {
		return err
	}
	s.log.InfoContext(ctx, "authz: signed in again; the earlier grant is revoked", "client_id", c.ClientID, "grant", c.GrantID, "revoked", prev)
	return s.revokeGrant(ctx, prev)
}
