package upstream

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
)

// Bounds on the groups an Identity carries, and so on the groups claim of
// the access tokens made from it: a user in more groups keeps the first
// MaxGroups in sort order, and a group name longer than MaxGroupLen bytes
// is dropped (never cut, so that no cut name can equal another).
const (
	MaxGroups   = tokencheck.MaxGroups
	MaxGroupLen = tokencheck.MaxGroupLen
)

// ErrNotAllowed is wrapped by the error of AllowList.Check for a user the
// allow-list leaves out.
var ErrNotAllowed = errors.New("authz: user not allowed to sign in")

// A Refusal is a user the allow-list leaves out, and why. Reason is the
// sentence for that user, which names the account but not the lists (they
// would tell anyone the provider signs in which domains, organizations,
// teams and groups the server is open to); Detail says what would have
// let them in, for the server's log.
type Refusal struct {
	Reason string
	Detail string
}

// Error implements error: the Reason and the Detail, for logs.
func (r *Refusal) Error() string {
	return "authz: user not allowed to sign in: " + r.Reason + " " + r.Detail
}

// Unwrap makes a Refusal match ErrNotAllowed.
func (r *Refusal) Unwrap() error { return ErrNotAllowed }

// An AllowList says who may sign in. A user is allowed when any one list
// names them: their upstream subject, or a login the provider keeps
// unique (Identity.UniqueLogin), is in Users; the domain of their
// verified e-mail is in EmailDomains; or one of their groups is in Orgs,
// Teams or Groups. An AllowList with every list empty (and a nil
// *AllowList) allows everyone. Logins, domains, organizations and teams
// compare without regard to ASCII case only (so no other character folds
// into an allowed name: the Kelvin sign is not a K); subjects and Groups
// compare exactly (OIDC claim values are opaque).
type AllowList struct {
	// Users are upstream subjects (OIDC "sub", GitHub's numeric id), or
	// GitHub logins. An OpenID provider's preferred_username never
	// counts: users may choose it.
	Users []string
	// EmailDomains are the domains of allowed e-mail addresses, matched
	// exactly ("example.com" does not allow "eng.example.com"). Only an
	// address the provider says is verified counts.
	EmailDomains []string
	// Orgs are GitHub organizations (logins); Teams are GitHub teams as
	// "org/team-slug". Both need the provider's GitHubMemberships.
	Orgs, Teams []string
	// Groups are values of the OIDC provider's groups claim (its name is
	// Provider.GroupsClaim).
	Groups []string
}

// Empty reports whether a allows everyone.
func (a *AllowList) Empty() bool {
	return a == nil || len(a.Users)+len(a.EmailDomains)+len(a.Orgs)+len(a.Teams)+len(a.Groups) == 0
}

// Check says whether id may sign in: nil, or a *Refusal (matching
// ErrNotAllowed) whose Reason tells the user what was checked.
func (a *AllowList) Check(id *Identity) error {
	if a.Empty() {
		return nil
	}
	if id == nil {
		return &Refusal{Reason: "The identity provider did not say who you are.", Detail: a.detail()}
	}
	if slices.Contains(a.Users, id.Subject) || (id.UniqueLogin && id.Login != "" && slices.ContainsFunc(a.Users, func(u string) bool { return asciiEqualFold(u, id.Login) })) {
		return nil
	}
	if d := id.VerifiedDomain(); d != "" && slices.ContainsFunc(a.EmailDomains, func(x string) bool { return asciiEqualFold(x, d) }) {
		return nil
	}
	groups := id.allGroups
	if groups == nil {
		groups = id.Groups
	}
	for _, g := range groups {
		if slices.Contains(a.Groups, g) ||
			slices.ContainsFunc(a.Orgs, func(o string) bool { return asciiEqualFold(o, g) }) ||
			slices.ContainsFunc(a.Teams, func(t string) bool { return asciiEqualFold(t, g) }) {
			return nil
		}
	}
	who := id.Login
	if who == "" {
		who = id.Subject
	}
	return &Refusal{Reason: fmt.Sprintf("This server is open only to the people its operators allowed, and the account %q is not one of them.", who), Detail: a.detail()}
}

// asciiEqualFold reports whether a and b are equal without regard to
// ASCII case; any other byte must be equal, so that no Unicode character
// folds into an ASCII one (strings.EqualFold folds U+212A KELVIN SIGN into
// "k", and U+017F LONG S into "s").
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// detail says, for the log, what would have let a refused user in.
func (a *AllowList) detail() string {
	var ways []string
	if len(a.Users) > 0 {
		ways = append(ways, "named users")
	}
	if len(a.EmailDomains) > 0 {
		ways = append(ways, "verified e-mail addresses at "+strings.Join(a.EmailDomains, ", "))
	}
	if len(a.Orgs) > 0 {
		ways = append(ways, "members of the GitHub organization(s) "+strings.Join(a.Orgs, ", "))
	}
	if len(a.Teams) > 0 {
		ways = append(ways, "members of the GitHub team(s) "+strings.Join(a.Teams, ", "))
	}
	if len(a.Groups) > 0 {
		ways = append(ways, "members of the group(s) "+strings.Join(a.Groups, ", "))
	}
	return "Open to: " + strings.Join(ways, "; ") + "."
}

// Validate checks the lists' entries: no empty names, domains that look
// like host names, teams as "org/team".
func (a *AllowList) Validate() error {
	if a == nil {
		return nil
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"users", a.Users}, {"email_domains", a.EmailDomains}, {"github_orgs", a.Orgs}, {"github_teams", a.Teams}, {"groups", a.Groups}} {
		for _, v := range l.v {
			if v == "" || len(v) > MaxGroupLen || strings.TrimSpace(v) != v {
				return fmt.Errorf("%s: %q: want a non-empty name of at most %d bytes without surrounding spaces", l.name, v, MaxGroupLen)
			}
		}
	}
	for _, d := range a.EmailDomains {
		if !validDomain(d) {
			return fmt.Errorf("email_domains: %q is not a domain name like example.com (no @, no scheme, no wildcard)", d)
		}
	}
	for _, o := range a.Orgs {
		if strings.ContainsAny(o, "/@ ") {
			return fmt.Errorf("github_orgs: %q is not an organization login like my-org", o)
		}
	}
	for _, t := range a.Teams {
		org, team, ok := strings.Cut(t, "/")
		if !ok || org == "" || team == "" || strings.ContainsAny(team, "/@ ") {
			return fmt.Errorf("github_teams: %q: want org/team-slug, like my-org/platform", t)
		}
	}
	return nil
}

// validDomain reports a DNS name of at least two labels, each 1-63
// letters, digits or hyphens, not starting or ending with a hyphen.
func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(d) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// VerifiedDomain is the domain of the user's e-mail address, lower-case,
// when the provider says the address is verified; else "".
func (id *Identity) VerifiedDomain() string {
	if !id.EmailVerified {
		return ""
	}
	_, d, ok := strings.Cut(id.Email, "@")
	if !ok || strings.Contains(d, "@") {
		return ""
	}
	return strings.ToLower(d)
}
