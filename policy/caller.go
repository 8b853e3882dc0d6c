package policy

import (
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/remotemcp/remotemcp/authz"
)

// A Caller is who makes a request, as the token's verifier saw them: what
// a Predicate decides on.
type Caller struct {
	// Subject is the token's subject (auth.TokenInfo.UserID).
	Subject string
	// Email is the subject's e-mail address if the issuer vouches that it
	// is verified, and "" otherwise (Extra[authz.ExtraEmail]).
	Email string
	// Groups are the subject's groups or roles (Extra[authz.ExtraGroups]).
	Groups []string
	// ClientID is the OAuth client the token was issued to
	// (Extra[authz.ExtraClientID]).
	ClientID string
}

// CallerOf returns the Caller that a verified token describes. A missing
// or mistyped Extra value reads as absent; groups may be a []string or a
// []any of strings (as decoded from JSON), whose other elements are
// skipped.
func CallerOf(info *auth.TokenInfo) Caller {
	if info == nil {
		return Caller{}
	}
	c := Caller{Subject: info.UserID}
	c.Email, _ = info.Extra[authz.ExtraEmail].(string)
	c.ClientID, _ = info.Extra[authz.ExtraClientID].(string)
	switch g := info.Extra[authz.ExtraGroups].(type) {
	case []string:
		c.Groups = g
	case []any:
		c.Groups = make([]string, 0, len(g))
		for _, v := range g {
			if s, ok := v.(string); ok {
				c.Groups = append(c.Groups, s)
			}
		}
	}
	return c
}

// A Predicate decides whether a caller may use an item, beside its scopes
// (Access.For). It is asked on every request that lists or uses the item,
// so it should be quick, must not block, and must not call back into the
// Registry. Subject, Email, EmailDomain, Group and ClientID build the
// common ones; AnyOf and AllOf combine them.
type Predicate func(Caller) bool

// Subject holds for a caller whose subject is one of ids (exactly).
func Subject(ids ...string) Predicate {
	ids = slices.Clone(ids)
	return func(c Caller) bool { return c.Subject != "" && slices.Contains(ids, c.Subject) }
}

// Email holds for a caller whose verified e-mail address is one of addrs,
// compared without regard to case.
func Email(addrs ...string) Predicate {
	addrs = slices.Clone(addrs)
	return func(c Caller) bool {
		return c.Email != "" && slices.ContainsFunc(addrs, func(a string) bool { return strings.EqualFold(a, c.Email) })
	}
}

// EmailDomain holds for a caller whose verified e-mail address is in one of
// domains: the part after its last "@" equals the domain, without regard to
// case. A subdomain is a different domain ("example.com" does not admit
// "a@eu.example.com").
func EmailDomain(domains ...string) Predicate {
	domains = slices.Clone(domains)
	return func(c Caller) bool {
		i := strings.LastIndexByte(c.Email, '@')
		if i < 0 {
			return false
		}
		domain := c.Email[i+1:]
		return slices.ContainsFunc(domains, func(d string) bool { return d != "" && strings.EqualFold(d, domain) })
	}
}

// Group holds for a caller in at least one of groups (names compared
// exactly).
func Group(groups ...string) Predicate {
	groups = slices.Clone(groups)
	return func(c Caller) bool {
		return slices.ContainsFunc(c.Groups, func(g string) bool { return g != "" && slices.Contains(groups, g) })
	}
}

// ClientID holds for a token issued to one of the OAuth clients ids.
func ClientID(ids ...string) Predicate {
	ids = slices.Clone(ids)
	return func(c Caller) bool { return c.ClientID != "" && slices.Contains(ids, c.ClientID) }
}

// AnyOf holds when at least one of ps holds (never for no ps).
func AnyOf(ps ...Predicate) Predicate {
	ps = nonNil(ps)
	return func(c Caller) bool {
		return slices.ContainsFunc(ps, func(p Predicate) bool { return p(c) })
	}
}

// AllOf holds when every one of ps holds (always for no ps).
func AllOf(ps ...Predicate) Predicate {
	ps = nonNil(ps)
	return func(c Caller) bool {
		for _, p := range ps {
			if !p(c) {
				return false
			}
		}
		return true
	}
}

func nonNil(ps []Predicate) []Predicate {
	if slices.ContainsFunc(ps, func(p Predicate) bool { return p == nil }) {
		panic("policy: nil Predicate")
	}
	return slices.Clone(ps)
}
