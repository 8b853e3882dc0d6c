package token

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/authztest"
)

// grantRecords is an in-test GrantStore: a set of grants, the revoked ones,
// a count of look-ups and an error to answer with.
type grantRecords struct {
	grants, revoked map[string]bool
	gets            int
	err             error
}

func (g *grantRecords) GrantRevoked(_ context.Context, id string) (bool, error) {
	return g.revoked[id], g.err
}

func (g *grantRecords) GetGrant(_ context.Context, id string) (struct{}, error) {
	g.gets++
	if g.err != nil {
		return struct{}{}, g.err
	}
	if !g.grants[id] {
		return struct{}{}, authz.ErrNotFound
	}
	return struct{}{}, nil
}

func TestRevocationCheck(t *testing.T) {
	store := &grantRecords{grants: map[string]bool{"live": true, "revoked": true}, revoked: map[string]bool{"revoked": true}}
	clock := authztest.NewClock()
	c := NewRevocationCheck[struct{}](store, 30*time.Second)
	c.now = clock.Now
	ctx := t.Context()

	for _, tt := range []struct {
		gid  string
		want bool
	}{
		{"revoked", true},
		{"gone", true}, // a grant the store no longer knows: a store restarted empty
		{"live", false},
	} {
		if got, err := c.Revoked(ctx, tt.gid, "jti"); err != nil || got != tt.want {
			t.Errorf("Revoked(%q) = %v, %v; want %v, nil", tt.gid, got, err, tt.want)
		}
	}

	// That a grant exists is remembered for the ttl, then asked again.
	gets := store.gets
	c.Revoked(ctx, "live", "jti")
	if store.gets != gets {
		t.Errorf("a known grant was looked up again within the ttl")
	}
	clock.Advance(30 * time.Second)
	c.Revoked(ctx, "live", "jti")
	if store.gets != gets+1 {
		t.Errorf("a known grant was not looked up again after the ttl")
	}

	// A revocation is seen at once, even while the grant is remembered.
	store.revoked["live"] = true
	if got, _ := c.Revoked(ctx, "live", "jti"); !got {
		t.Error("a revoked grant still passes while remembered")
	}

	// A store error is an error, not a verdict.
	store.err = errors.New("store down")
	if _, err := c.Revoked(ctx, "other", "jti"); !errors.Is(err, store.err) {
		t.Errorf("store error: err = %v, want it wrapped", err)
	}
}
