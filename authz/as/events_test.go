package as

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz"
)

// TestTokenEvent: a token endpoint answer's event names the grant type
// only if it is one we serve, and the outcome only by OAuth error code.
func TestTokenEvent(t *testing.T) {
	for _, tt := range []struct {
		name      string
		grantType string
		err       error
		want      Event
	}{
		{"code ok", "authorization_code", nil, Event{Kind: EventToken, Outcome: "ok", GrantType: "authorization_code"}},
		{"refresh refused", "refresh_token", authz.ErrInvalidGrant("the refresh token was already used"),
			Event{Kind: EventToken, Outcome: "invalid_grant", GrantType: "refresh_token"}},
		{"made-up grant type", "urn:whatever:" + string(make([]byte, 100)), authz.ErrUnsupportedGrantType("no"),
			Event{Kind: EventToken, Outcome: "unsupported_grant_type", GrantType: "other"}},
		{"store failure", "authorization_code", errors.New("redis: down"),
			Event{Kind: EventToken, Outcome: "server_error", GrantType: "authorization_code"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tokenEvent(tt.grantType, tt.err)); diff != "" {
				t.Errorf("tokenEvent (-want +got):\n%s", diff)
			}
		})
	}
}
