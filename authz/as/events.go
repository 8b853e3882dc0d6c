package as

import (
	"errors"

	"github.com/remotemcp/remotemcp/authz"
)

// An Event is something the authorization server did, told to
// Options.Events (and MetadataFetcherOptions.Events) for metrics. It
// names no user, client, token or grant: its fields take only the values
// listed here, so that they can be metric labels.
type Event struct {
	Kind EventKind
	// Outcome is, for EventRegistration: "ok" or "refused"; for
	// EventAuthorization: "consented" (asked or remembered), "denied"
	// (by the user) or "refused" (by the sign-in allow-list); for
	// EventToken: "ok" or the OAuth error code of the refusal
	// ("invalid_grant", ...; "server_error" for anything else); for
	// EventMetadataFetch: "ok" or "failed"; for EventRateLimited: the
	// endpoint ("register", "authorize", "token", "revoke",
	// "introspect"). Empty otherwise.
	Outcome string
	// GrantType is the grant_type of an EventToken:
	// "authorization_code", "refresh_token" or "other".
	GrantType string
}

// An EventKind is what an Event is about.
type EventKind uint8

// The kinds of Event.
const (
	// EventRegistration is a dynamic client registration (/register).
	EventRegistration EventKind = iota + 1
	// EventAuthorization is the end of a user's part of an authorization.
	EventAuthorization
	// EventToken is an answer of the token endpoint.
	EventToken
	// EventRefreshReuse is a refresh token used again outside the grace
	// window (its grant is revoked).
	EventRefreshReuse
	// EventRevocation is a token revoked at /revoke.
	EventRevocation
	// EventMetadataFetch is a fetch of a client metadata document (not
	// an answer from a cache).
	EventMetadataFetch
	// EventRateLimited is a request refused by a rate limit.
	EventRateLimited
)

// Outcomes of events.
const (
	OutcomeOK        = "ok"
	OutcomeRefused   = "refused"
	OutcomeFailed    = "failed"
	OutcomeConsented = "consented"
	OutcomeDenied    = "denied"
)

// event tells Options.Events, if set.
func (s *Server) event(e Event) {
	if s.o.Events != nil {
		s.o.Events(e)
	}
}

// tokenEvent is the EventToken of an answer of the token endpoint.
func tokenEvent(grantType string, err error) Event {
	e := Event{Kind: EventToken, Outcome: OutcomeOK, GrantType: "other"}
	if grantType == grantAuthorizationCode || grantType == grantRefreshToken {
		e.GrantType = grantType
	}
	if err != nil {
		e.Outcome = string(authz.ServerError)
		var ae *authz.Error
		if errors.As(err, &ae) && ae.Code != "" {
			e.Outcome = string(ae.Code)
		}
	}
	return e
}
