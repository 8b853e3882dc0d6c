package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
)

// A refresh token is found by its hash alone, so its index entry
// {rt:hash} cannot share the slot of its grant: each operation on a token
// is two steps, each atomic within one slot. The first reads (or claims)
// the index entry; the second runs on the grant's keys, where the family
// is the authority: an index entry whose token is not in the family (it
// was replaced, revoked or killed) leads nowhere, and expires with the
// token's TTL.

// IssueRefresh implements as.RefreshStore. It starts the family of the
// grant, replacing any earlier one (whose tokens are then unknown), and
// stores nothing for a revoked grant. It fails if the hash is indexed
// already.
func (s *Store) IssueRefresh(ctx context.Context, grantID, clientID, hash string, ttl time.Duration) (err error) {
	if ttl <= 0 {
		return errNoTTL
	}
	defer wrapf(&err, "redisstore: issue refresh token of grant %s", grantID)
	if err := s.claimRefresh(ctx, hash, grantID, ttl); err != nil {
		return err
	}
	k := s.grantKeys(grantID)
	n, err := issueScript.Run(ctx, s.rdb, []string{k.revoked, k.family, k.tokens}, clientID, hash, millis(ttl)).Int()
	if err == nil && n == 0 {
		s.unclaimRefresh(ctx, hash) // revoked: the entry would lead nowhere
	}
	return err
}

// RotateRefresh implements as.RefreshStore. Beyond the interface's contract,
// Reused revokes the grant in the same script that kills the family, as
// RevokeGrant does: the caller revokes it too, but a revocation that
// depended on the caller could be lost between the two (a crash, or a
// reply lost on the network).
func (s *Store) RotateRefresh(ctx context.Context, r as.RefreshRotation) (_ string, _ as.RotateResult, err error) {
	if r.TTL <= 0 {
		return "", 0, errNoTTL
	}
	defer wrapf(&err, "redisstore: rotate refresh token")
	grantID, err := s.rdb.Get(ctx, s.key("rt", r.PresentedHash)).Result()
	if err != nil {
		return "", 0, err
	}
	if err := s.claimRefresh(ctx, r.NewHash, grantID, r.TTL); err != nil {
		return "", 0, err
	}
	at := r.Now
	if at.IsZero() {
		at = s.now()
	}
	cutoff, grace := at.Add(-r.Grace), "0"
	if r.Grace > 0 {
		grace = "1"
	}
	res, err := rotateScript.Run(ctx, s.rdb, s.grantKeys(grantID).all(),
		r.PresentedHash, r.NewHash, r.ClientID,
		at.Unix(), at.Nanosecond(), cutoff.Unix(), cutoff.Nanosecond(), grace,
		millis(r.TTL), MaxFamilyTokens, s.channel, grantID, millis(RevocationTTL)).Int64Slice()
	if err != nil {
		return "", 0, err
	}
	if len(res) != 1 {
		return "", 0, fmt.Errorf("unexpected reply %v", res)
	}
	switch rr := as.RotateResult(res[0]); rr {
	case as.Rotated, as.RotatedInGrace:
		return grantID, rr, nil
	case as.Reused:
		s.cache.revoked(grantID)
		s.unclaimRefresh(ctx, r.NewHash)
		return grantID, rr, nil
	default:
		s.unclaimRefresh(ctx, r.NewHash)
		return "", 0, authz.ErrNotFound
	}
}

// LookupRefresh implements as.RefreshStore: it knows every remembered
// token of a live family, not only the current one.
func (s *Store) LookupRefresh(ctx context.Context, hash string) (grantID, clientID string, err error) {
	defer wrapf(&err, "redisstore: look up refresh token")
	grantID, err = s.rdb.Get(ctx, s.key("rt", hash)).Result()
	if err != nil {
		return "", "", err
	}
	k := s.grantKeys(grantID)
	clientID, err = lookupScript.Run(ctx, s.rdb, []string{k.family, k.tokens}, hash).Text()
	if err != nil {
		return "", "", err
	}
	return grantID, clientID, nil
}

// claimRefresh indexes a new token hash. A random token never collides: a
// hash that is indexed already, for another grant, is the caller's bug.
// The same grant's entry is this call's own, retried by go-redis after a
// lost reply.
func (s *Store) claimRefresh(ctx context.Context, hash, grantID string, ttl time.Duration) error {
	key := s.key("rt", hash)
	ok, err := s.rdb.SetNX(ctx, key, grantID, ttl).Result()
	if err != nil || ok {
		return err
	}
	if g, err := s.rdb.Get(ctx, key).Result(); err == nil && g == grantID {
		return nil
	} else if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return errors.New("refresh token hash already issued")
}

// unclaimRefresh deletes the index entry of a token that did not join a
// family, best effort: if it stays, it leads nowhere and expires.
func (s *Store) unclaimRefresh(ctx context.Context, hash string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = s.rdb.Del(ctx, s.key("rt", hash)).Err()
}
