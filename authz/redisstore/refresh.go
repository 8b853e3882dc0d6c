package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
)

// A refresh token is found by its hash alone, so its index entry
// {rt:hash} cannot share the slot of its grant: each operation on a token
// is two steps, each atomic within one slot. The first reads (or claims)
// the index entry; the second runs on the grant's keys, where the family
// is the authority. The scripts return the hashes of the tokens a family
// forgets (trimmed to MaxFamilyTokens, expired, replaced, revoked), and
// their index entries are deleted in a third step: so a grant holds at
// most MaxFamilyTokens index entries however often it rotates. An entry
// whose deletion was lost (a crash between the steps) leads nowhere, as
// the family is the authority, and expires with its token's TTL.

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
	res, err := issueScript.Run(ctx, s.rdb, []string{k.revoked, k.family, k.tokens}, clientID, hash, millis(ttl)).StringSlice()
	if err != nil {
		return err
	}
	if len(res) == 0 || res[0] == "0" {
		s.unclaimRefresh(ctx, hash) // revoked: the entry would lead nowhere
		return nil
	}
	s.unclaimRefresh(ctx, res[1:]...) // the replaced family's
	return nil
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
		millis(r.TTL), MaxFamilyTokens, s.channel, grantID, millis(RevocationTTL)).StringSlice()
	if err != nil {
		return "", 0, err
	}
	if len(res) == 0 {
		return "", 0, fmt.Errorf("unexpected reply %v", res)
	}
	n, err := strconv.Atoi(res[0])
	if err != nil {
		return "", 0, fmt.Errorf("unexpected reply %v", res)
	}
	switch rr := as.RotateResult(n); rr {
	case as.Rotated, as.RotatedInGrace:
		s.unclaimRefresh(ctx, res[1:]...)
		return grantID, rr, nil
	case as.Reused:
		s.cache.revoked(grantID)
		s.unclaimRefresh(ctx, append(res[1:], r.NewHash)...)
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

// unclaimRefresh deletes the index entries of tokens that did not join a
// family or that a family forgot, best effort: an entry that stays leads
// nowhere and expires with its token. Each entry is in a slot of its own,
// so each is one DEL, pipelined.
func (s *Store) unclaimRefresh(ctx context.Context, hashes ...string) {
	if len(hashes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, h := range hashes {
			p.Del(ctx, s.key("rt", h))
		}
		return nil
	})
}
