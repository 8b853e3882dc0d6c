package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz/as"
)

// PutGrant implements as.GrantStore. It replaces a grant with the same
// ID, and stores nothing for a revoked grant.
func (s *Store) PutGrant(ctx context.Context, g *as.Grant, ttl time.Duration) (err error) {
	if g == nil {
		return errNilRecord
	}
	defer wrapf(&err, "redisstore: put grant %s", g.ID)
	k := s.grantKeys(g.ID)
	return s.putUnlessRevoked(ctx, k.grant, k.revoked, g, ttl)
}

// GetGrant implements as.GrantStore. A revoked grant is not found.
func (s *Store) GetGrant(ctx context.Context, id string) (_ *as.Grant, err error) {
	defer wrapf(&err, "redisstore: get grant %s", id)
	return get[as.Grant](ctx, s.rdb, s.grantKeys(id).grant)
}

// RevokeGrant implements as.GrantStore. In one script it deletes the
// grant, its refresh family and its upstream tokens, marks it revoked for
// RevocationTTL, and announces the revocation to every Store on the same
// Redis; then it deletes the index entries of the family's tokens.
// Revoking an unknown grant is not an error: it is remembered all the
// same.
func (s *Store) RevokeGrant(ctx context.Context, id string) (err error) {
	defer wrapf(&err, "redisstore: revoke grant %s", id)
	hashes, err := revokeScript.Run(ctx, s.rdb, s.grantKeys(id).all(), millis(RevocationTTL), s.channel, id).StringSlice()
	if err != nil {
		return err
	}
	s.cache.revoked(id)
	s.unclaimRefresh(ctx, hashes...)
	return nil
}

// GrantRevoked implements as.GrantStore. It answers from memory while
// the revocation subscription is up, and otherwise asks Redis (EXISTS). It
// is false for a grant the store never heard of.
func (s *Store) GrantRevoked(ctx context.Context, id string) (_ bool, err error) {
	if revoked, ok := s.cache.get(id); ok {
		return revoked, nil
	}
	defer wrapf(&err, "redisstore: check revocation of grant %s", id)
	return s.checkRevoked(ctx, id)
}

var _ as.LoginIndex = (*Store)(nil)

// SwapLogin implements as.LoginIndex: one SET … GET on a key that hashes
// the subject and client.
func (s *Store) SwapLogin(ctx context.Context, subject, clientID, grantID string, ttl time.Duration) (_ string, err error) {
	if ttl <= 0 {
		return "", errNoTTL
	}
	defer wrapf(&err, "redisstore: swap the latest grant of client %s", clientID)
	prev, err := s.rdb.SetArgs(ctx, s.loginKey(subject, clientID), grantID, redis.SetArgs{TTL: ttl, Get: true}).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return prev, err
}
