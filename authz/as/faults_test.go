package as_test

import (
	"context"
	"time"

	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/memstore"
)

// faultyStore is the memstore with failures on demand: fail[method] is
// returned by that method instead of its answer; the other fields make it
// answer as a store with another view of the world would.
type faultyStore struct {
	*memstore.Store
	fail map[string]error
	// grantRevoked makes GrantRevoked say yes.
	grantRevoked bool
	// staleCodes makes TakeCode hand out codes whose expiry has passed (a
	// store whose TTLs are coarser than the code's lifetime).
	staleCodes bool
}

func (f *faultyStore) PutPending(ctx context.Context, p *as.PendingAuth, ttl time.Duration) error {
	if err := f.fail["PutPending"]; err != nil {
		return err
	}
	return f.Store.PutPending(ctx, p, ttl)
}

func (f *faultyStore) GetPending(ctx context.Context, id string) (*as.PendingAuth, error) {
	if err := f.fail["GetPending"]; err != nil {
		return nil, err
	}
	return f.Store.GetPending(ctx, id)
}

func (f *faultyStore) TakePending(ctx context.Context, id string) (*as.PendingAuth, error) {
	if err := f.fail["TakePending"]; err != nil {
		return nil, err
	}
	return f.Store.TakePending(ctx, id)
}

func (f *faultyStore) PutCode(ctx context.Context, c *as.AuthCode, ttl time.Duration) error {
	if err := f.fail["PutCode"]; err != nil {
		return err
	}
	return f.Store.PutCode(ctx, c, ttl)
}

func (f *faultyStore) TakeCode(ctx context.Context, hash string) (*as.AuthCode, error) {
	if err := f.fail["TakeCode"]; err != nil {
		return nil, err
	}
	c, err := f.Store.TakeCode(ctx, hash)
	if c != nil && f.staleCodes {
		c.ExpiresAt = c.ExpiresAt.Add(-time.Hour)
	}
	return c, err
}

func (f *faultyStore) PutGrant(ctx context.Context, g *as.Grant, ttl time.Duration) error {
	if err := f.fail["PutGrant"]; err != nil {
		return err
	}
	return f.Store.PutGrant(ctx, g, ttl)
}

func (f *faultyStore) GetGrant(ctx context.Context, id string) (*as.Grant, error) {
	if err := f.fail["GetGrant"]; err != nil {
		return nil, err
	}
	return f.Store.GetGrant(ctx, id)
}

func (f *faultyStore) RevokeGrant(ctx context.Context, id string) error {
	if err := f.fail["RevokeGrant"]; err != nil {
		return err
	}
	return f.Store.RevokeGrant(ctx, id)
}

func (f *faultyStore) GrantRevoked(ctx context.Context, id string) (bool, error) {
	if err := f.fail["GrantRevoked"]; err != nil {
		return false, err
	}
	if f.grantRevoked {
		return true, nil
	}
	return f.Store.GrantRevoked(ctx, id)
}

func (f *faultyStore) IssueRefresh(ctx context.Context, grantID, clientID, hash string, ttl time.Duration) error {
	if err := f.fail["IssueRefresh"]; err != nil {
		return err
	}
	return f.Store.IssueRefresh(ctx, grantID, clientID, hash, ttl)
}

func (f *faultyStore) RotateRefresh(ctx context.Context, r as.RefreshRotation) (string, as.RotateResult, error) {
	if err := f.fail["RotateRefresh"]; err != nil {
		return "", 0, err
	}
	return f.Store.RotateRefresh(ctx, r)
}

func (f *faultyStore) LookupRefresh(ctx context.Context, hash string) (string, string, error) {
	if err := f.fail["LookupRefresh"]; err != nil {
		return "", "", err
	}
	return f.Store.LookupRefresh(ctx, hash)
}

func (f *faultyStore) Approve(ctx context.Context, subject, clientID, redirectURI string, scopes []string, ttl time.Duration) error {
	if err := f.fail["Approve"]; err != nil {
		return err
	}
	return f.Store.Approve(ctx, subject, clientID, redirectURI, scopes, ttl)
}
