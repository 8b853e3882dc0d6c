package token

import (
	"context"
	"errors"
	"time"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/internal/ttlcache"
)

// GrantStore is what the revocation check reads of the grants: whether one
// was revoked, and whether it exists. G is the store's grant record, which
// the check never looks into.
type GrantStore[G any] interface {
	GrantRevoked(ctx context.Context, id string) (bool, error)
	GetGrant(ctx context.Context, id string) (G, error)
}

// A RevocationCheck is the access-token revocation check, for
// IssuerOptions.Revoked: a token is refused if its grant was revoked
// (answered from memory by the stores) or is no longer known, which is what
// a Redis restarted empty looks like: then clients get a clean 401 and
// re-authorize, instead of using tokens whose grant, refresh family and
// upstream tokens are gone. That a grant exists is remembered for a while
// (of up to maxKnownGrants grants, the one seen longest ago going first), so
// the check costs one store round trip per grant per that while, not one
// per request.
type RevocationCheck struct {
	revoked func(ctx context.Context, id string) (bool, error)
	exists  func(ctx context.Context, id string) error
	ttl     time.Duration
	now     func() time.Time
	known   *ttlcache.Cache[string, struct{}] // the grants seen to exist
}

// maxKnownGrants bounds the grants a RevocationCheck remembers. Forgetting
// one costs a store round trip.
const maxKnownGrants = 100_000

// NewRevocationCheck returns the check over grants, which remembers for ttl
// that a grant exists.
func NewRevocationCheck[G any](grants GrantStore[G], ttl time.Duration) *RevocationCheck {
	if grants == nil {
		panic("token: nil GrantStore")
	}
	return &RevocationCheck{
		revoked: grants.GrantRevoked,
		exists: func(ctx context.Context, id string) error {
			_, err := grants.GetGrant(ctx, id)
			return err
		},
		ttl:   ttl,
		now:   time.Now,
		known: ttlcache.New[string, struct{}](maxKnownGrants),
	}
}

// Revoked reports whether the grant gid was revoked or is gone; it has the
// signature of IssuerOptions.Revoked (the token's jti is not consulted).
func (c *RevocationCheck) Revoked(ctx context.Context, gid, _ string) (bool, error) {
	if revoked, err := c.revoked(ctx, gid); err != nil || revoked {
		return revoked, err
	}
	if _, ok := c.known.Get(gid, c.now()); ok {
		return false, nil
	}
	err := c.exists(ctx, gid)
	if errors.Is(err, authz.ErrNotFound) {
		c.known.Delete(gid)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	now := c.now()
	c.known.Set(gid, struct{}{}, now.Add(c.ttl), now)
	return false, nil
}
