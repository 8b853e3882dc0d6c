package remotemcp

import (
	"errors"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/upstream"
)

// SignIn says who may use the server. The zero value admits everyone
// whom the auth mode admits.
type SignIn struct {
	// Allow is the allow-list: users, verified e-mail domains, GitHub
	// organizations and teams, groups. A user on any one of its lists
	// gets in; nil admits everyone. With AuthProxy it is checked at the
	// upstream callback (a refused user sees a page saying why and whom to
	// ask, the client gets access_denied) and again at each refresh (a
	// user no longer on it loses the grant); with AuthJWT and
	// AuthIntrospect it is checked against each token's claims (403
	// access_denied).
	Allow *upstream.AllowList
	// GroupsClaim names the claim that lists a user's groups, in the
	// upstream's ID token or userinfo (AuthProxy) and in access tokens
	// (AuthJWT, AuthIntrospect). Default "groups".
	GroupsClaim string
	// Contact is whom a refused user should ask, shown on the refusal
	// page (an e-mail address or a URL).
	Contact string
}

// configureUpstream sets what the provider reads for the allow-list and
// the groups claim: the claim name, and GitHub's memberships when the
// list names organizations or teams.
func (s *SignIn) configureUpstream(u *upstream.Provider) {
	if s.GroupsClaim != "" {
		u.GroupsClaim = s.GroupsClaim
	}
	if u.Name == "github" && s.Allow != nil && len(s.Allow.Orgs)+len(s.Allow.Teams) > 0 {
		u.UseGitHubMemberships()
	}
}

// admit is RequireBearer's Admit for AuthJWT and AuthIntrospect: the
// allow-list over the token's claims (subject, verified e-mail, groups);
// nil when there is no list, and with AuthProxy, whose own tokens were
// checked at sign-in and at every refresh.
func (s *SignIn) admit(mode Auth) func(*auth.TokenInfo) error {
	allow := s.Allow
	if allow == nil || mode == AuthProxy || mode == AuthNone {
		return nil
	}
	return func(info *auth.TokenInfo) error {
		email, _ := info.Extra[authz.ExtraEmail].(string)
		groups, _ := info.Extra[authz.ExtraGroups].([]string)
		err := allow.Check(&upstream.Identity{Subject: info.UserID, Email: email, EmailVerified: email != "", Groups: groups})
		if r, ok := errors.AsType[*upstream.Refusal](err); ok {
			return errors.New(r.Reason)
		}
		return err
	}
}
