package upstream

import (
	"context"
	"time"
)

// TokenStore holds the sealed upstream tokens of each grant.
type TokenStore interface {
	PutUpstream(ctx context.Context, grantID string, s *Sealed, ttl time.Duration) error
	GetUpstream(ctx context.Context, grantID string) (*Sealed, error)
	DeleteUpstream(ctx context.Context, grantID string) error
}

// TokenSwapper is an optional capability of an TokenStore
// (found by type assertion): replace a grant's record only if it is still
// old, byte for byte. The vault writes a refreshed upstream token this way,
// so that a replica that stalled past its refresh lock's expiry cannot
// overwrite the newer token another replica stored meanwhile (fencing).
type TokenSwapper interface {
	SwapUpstream(ctx context.Context, grantID string, old, new *Sealed, ttl time.Duration) (swapped bool, err error)
}

// GrantRevoker revokes a grant: the vault does when the upstream refuses
// its refresh token for good, so that the grant's tokens stop working.
type GrantRevoker interface {
	RevokeGrant(ctx context.Context, id string) error
}
