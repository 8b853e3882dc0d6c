package as_test

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/authz"
)

// TestSignInAbandoned: a sign-in whose code is never redeemed keeps its
// grant and upstream tokens only as long as the code could still be
// redeemed (and a minute); a completed one keeps them for the refresh
// token's lifetime.
func TestSignInAbandoned(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	e.code(t, c, "notes:read")
	abandoned := slices.Collect(maps.Keys(e.vault.m))
	if len(abandoned) != 1 {
		t.Fatalf("vault holds %d grants after the callback, want 1", len(abandoned))
	}
	gid := abandoned[0]
	if got, want := e.vault.signIn[gid], envCodeTTL+time.Minute; got != want {
		t.Errorf("upstream tokens of an unredeemed sign-in kept for %v, want %v", got, want)
	}
	e.login(t, c, "notes:read")
	var completed string
	for id := range e.vault.m {
		if id != gid {
			completed = id
		}
	}
	if _, ok := e.vault.signIn[completed]; ok {
		t.Errorf("upstream tokens of a completed sign-in not kept")
	}
	e.clock.Advance(envCodeTTL + time.Minute + time.Second)
	if _, err := e.st.GetGrant(t.Context(), gid); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("grant of an abandoned sign-in after its code expired: %v, want ErrNotFound", err)
	}
	if _, err := e.st.GetGrant(t.Context(), completed); err != nil {
		t.Errorf("grant of a completed sign-in: %v", err)
	}
	e.clock.Advance(envRefreshTTL - 3*time.Minute)
	if _, err := e.st.GetGrant(t.Context(), completed); err != nil {
		t.Errorf("grant of a completed sign-in before the refresh lifetime ends: %v", err)
	}
}

// TestSignInReplacesGrant: a user's new sign-in with the same registered
// client revokes the grant of the one before (its tokens stop working);
// the same user's grant with another client stands.
func TestSignInReplacesGrant(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	other, _ := e.register(t, "none")
	first := e.login(t, c, "notes:read")
	kept := e.login(t, other, "notes:read")
	for i := range 3 {
		second := e.login(t, c, "notes:read")
		if e.live(t, first.AccessToken) {
			t.Errorf("sign-in %d: the earlier grant's access token still works", i+2)
		}
		if _, err := e.refresh(t, c, first.RefreshToken); err == nil {
			t.Errorf("sign-in %d: the earlier grant's refresh token still works", i+2)
		}
		if !e.live(t, second.AccessToken) || !e.live(t, kept.AccessToken) {
			t.Errorf("sign-in %d: the new grant, or the grant of another client, does not work", i+2)
		}
		first = second
	}
}

// TestConsentLivesWithClient: a registered client's remembered approval
// lives no longer than the client lives unused (30 days by default), not
// the 90 days of ConsentTTL.
func TestConsentLivesWithClient(t *testing.T) {
	e := newEnv(t)
	c, _ := e.register(t, "none")
	e.code(t, c, "notes:read")
	const loopback = "http://127.0.0.1/cb" // keyed without the loopback port
	e.clock.Advance(30*24*time.Hour - time.Minute)
	if _, err := e.st.Approved(t.Context(), "test:u1", c.ClientID, loopback); err != nil {
		t.Fatalf("approval before the client's lifetime: %v", err)
	}
	e.clock.Advance(2 * time.Minute)
	if _, err := e.st.Approved(t.Context(), "test:u1", c.ClientID, loopback); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("approval after the client's lifetime: %v, want ErrNotFound", err)
	}
}
