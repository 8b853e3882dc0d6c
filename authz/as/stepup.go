package as

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/remotemcp/remotemcp/authz"
)

// Step-up for clients that refresh instead of authorizing again.
//
// On 403 insufficient_scope (RFC 6750 §3.1) a client should start a new
// authorization that asks for the scopes of the challenge. Some widely used
// clients (the TypeScript SDK v1 and what is built on it) run their whole
// auth routine instead, which refreshes whenever it holds a refresh token:
// the refresh (rightly, RFC 6749 §6) brings back the old scopes, the retry
// meets the same 403, and the client gives up. Those clients treat
// invalid_grant from a refresh as "drop the tokens and authorize again".
//
// So the resource server tells us (WantStepUp) when it refuses a token of
// one of our grants for missing scopes, and we remember that for a short
// while (Options.StepUpTTL, a minute). The next refresh of that grant that
// would not bring those scopes is answered with invalid_grant, once: the
// mark is taken by that refresh. The grant is not revoked and its refresh token
// stays valid (nothing is rotated), so that a client which declines the
// step-up keeps working after one more refresh. A client that steps up
// correctly (a new authorization, no refresh) never meets the mark; it
// expires.
//
// Some of those clients then authorize again with the scopes of their
// first sign-in, not those of the challenge (the MCP Inspector 2.12.0
// CLI). So the refused refresh leaves a second mark, for the grant's
// client and user, for Options.PendingTTL (10 minutes): the next
// authorization request of that client from a browser signed in as that
// user (our user cookie) also asks for the missing scopes. The consent page then lists them (a remembered approval
// does not cover them), so the user approves them explicitly; RFC 6749
// §3.3 lets the server issue other scopes than requested, and the token
// response says which.

// StepUpStore remembers step-up marks: scopes under a key (a grant ID, or
// a hash of a client and user), at most one mark per key (a new one
// replaces the old), for ttl. TakeStepUp returns and removes a mark
// atomically (of two concurrent takes, one gets it), ErrNotFound when
// there is none.
type StepUpStore interface {
	MarkStepUp(ctx context.Context, key string, scopes []string, ttl time.Duration) error
	TakeStepUp(ctx context.Context, key string) ([]string, error)
}

// carryKey is the key of the step-up mark of a client and a user.
func carryKey(clientID, subject string) string {
	return "carry:" + hashToken(clientID+"\x00"+subject)
}

// WantStepUp records that the resource server refused an access token of
// grant gid because it lacked scopes. Only scopes the server offers are
// kept. It is a no-op without an Options.StepUps store. Errors are logged,
// not returned: the refusal stands either way.
func (s *Server) WantStepUp(ctx context.Context, gid string, scopes []string) {
	if s.st.StepUps == nil || gid == "" {
		return
	}
	var known []string
	for _, sc := range scopes {
		if slices.Contains(s.offered, sc) && !slices.Contains(known, sc) {
			known = append(known, sc)
		}
	}
	if len(known) == 0 {
		return
	}
	if err := s.st.StepUps.MarkStepUp(ctx, gid, known, s.o.StepUpTTL); err != nil {
		s.log.WarnContext(ctx, "authz: step-up mark not stored", "grant", gid, "error", err)
	}
}

// checkStepUp takes the step-up mark of grant g, if any, and refuses a
// refresh to scopes that do not include the marked ones; the missing
// scopes then carry to the next authorization of g's client and user.
func (s *Server) checkStepUp(ctx context.Context, g *Grant, scopes []string) error {
	if s.st.StepUps == nil {
		return nil
	}
	want, err := s.st.StepUps.TakeStepUp(ctx, g.ID)
	if errors.Is(err, authz.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var missing []string
	for _, sc := range want {
		if !slices.Contains(scopes, sc) {
			missing = append(missing, sc)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := s.st.StepUps.MarkStepUp(ctx, carryKey(g.ClientID, g.Subject), missing, s.o.PendingTTL); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "authz: refresh refused so that the client authorizes again for more scopes", "client_id", g.ClientID, "grant", g.ID, "scopes", missing)
	return authz.ErrInvalidGrant("the resource server asked for the scopes " + strings.Join(missing, " ") +
		", which a refresh cannot add: authorize again asking for them (this refresh token stays valid)")
}

// carryStepUp adds to the scopes of an authorization request of client
// for user (our user cookie's subject; "" for none) the scopes a refused
// refresh left for them, taking that mark.
func (s *Server) carryStepUp(ctx context.Context, clientID, user string, scopes []string) ([]string, error) {
	if s.st.StepUps == nil || user == "" {
		return scopes, nil
	}
	more, err := s.st.StepUps.TakeStepUp(ctx, carryKey(clientID, user))
	if errors.Is(err, authz.ErrNotFound) {
		return scopes, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sc := range s.offered { // offered order, as narrowScopes
		if slices.Contains(scopes, sc) || slices.Contains(more, sc) {
			out = append(out, sc)
		}
	}
	if len(out) > len(scopes) {
		s.log.InfoContext(ctx, "authz: a step-up the resource server wanted is added to the request", "client_id", clientID, "scopes", out)
	}
	return out, nil
}
