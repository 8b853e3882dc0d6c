package remotemcp

import (
	"errors"
	"fmt"
	"strings"

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
	// GitHubMemberships makes the github upstream read the user's
	// organizations and teams as their groups (adding the read:org
	// scope) even when Allow names none: for items restricted with
	// policy.Group. Allow's Orgs or Teams turn it on by themselves.
	GitHubMemberships bool
}

// Check reports whether s fits the auth mode and, with AuthProxy, the
// upstream ("dev", "oidc", "github" or "google"): that its lists are well
// formed, and that each names what that mode can check. New checks it;
// the binary checks it as it reads its flags and configuration file,
// whose keys the messages name.
func (s *SignIn) Check(mode Auth, upstreamName string) error {
	allow := s.Allow
	if err := allow.Validate(); err != nil {
		return fmt.Errorf("signin: %w", err)
	}
	github := mode == AuthProxy && upstreamName == "github"
	switch {
	case mode == AuthNone && (!allow.Empty() || s.GroupsClaim != ""):
		return errors.New("signin: auth mode none has no users to check: drop the allow-lists, or use auth mode proxy, jwt or introspect")
	case !github && allow != nil && len(allow.Orgs)+len(allow.Teams) > 0:
		return errors.New("signin.github_orgs and github_teams need auth mode proxy with the github upstream; other providers say a user's groups in signin.groups")
	case github && allow != nil && len(allow.Groups) > 0:
		return errors.New("signin.groups: GitHub has no groups claim; list organizations in signin.github_orgs or teams in signin.github_teams")
	case github && s.GroupsClaim != "":
		return errors.New("signin.groups_claim is for OpenID providers and JWTs; GitHub's groups are its organizations and teams")
	}
	if s.GroupsClaim != "" && (strings.TrimSpace(s.GroupsClaim) != s.GroupsClaim || len(s.GroupsClaim) > 256) {
		return fmt.Errorf("signin.groups_claim %q: want a claim name without surrounding spaces", s.GroupsClaim)
	}
	if len(s.Contact) > 256 {
		return errors.New("signin.contact: at most 256 characters")
	}
	return nil
}

// configureUpstream sets what the provider reads for the allow-list and
// the groups claim: the claim name, and GitHub's memberships when the
// list names organizations or teams.
func (s *SignIn) configureUpstream(u *upstream.Provider) {
	if s.GroupsClaim != "" {
		u.GroupsClaim = s.GroupsClaim
	}
	if u.Name == "github" && (s.GitHubMemberships || s.Allow != nil && len(s.Allow.Orgs)+len(s.Allow.Teams) > 0) {
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
		// The Refusal's Reason is sent to the client (error_description);
		// its Detail, which names the lists, is not.
		email, _ := info.Extra[authz.ExtraEmail].(string)
		groups, _ := info.Extra[authz.ExtraGroups].([]string)
		err := allow.Check(&upstream.Identity{Subject: info.UserID, Email: email, EmailVerified: email != "", Groups: groups})
		if r, ok := errors.AsType[*upstream.Refusal](err); ok {
			return errors.New(r.Reason)
		}
		return err
	}
}
