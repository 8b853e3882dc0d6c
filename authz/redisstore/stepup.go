package redisstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/remotemcp/remotemcp/authz/as"
)

var _ as.StepUpStore = (*Store)(nil)

// stepUpKey is the key of a step-up mark: the scopes, separated by spaces.
// It lives for the mark's TTL (minutes); there are at most two per grant
// (its own, and its client and user's once a refresh was refused).
func (s *Store) stepUpKey(key string) string { return s.key("stepup", key) }

// MarkStepUp implements as.StepUpStore, with SET PX.
func (s *Store) MarkStepUp(ctx context.Context, key string, scopes []string, ttl time.Duration) (err error) {
	defer wrapf(&err, "redisstore: mark step-up")
	if ttl <= 0 {
		return errors.New("ttl must be positive")
	}
	return s.rdb.Set(ctx, s.stepUpKey(key), strings.Join(scopes, " "), ttl).Err()
}

// TakeStepUp implements as.StepUpStore, with GETDEL.
func (s *Store) TakeStepUp(ctx context.Context, key string) (_ []string, err error) {
	defer wrapf(&err, "redisstore: take step-up")
	v, err := s.rdb.GetDel(ctx, s.stepUpKey(key)).Result()
	if err != nil {
		return nil, err
	}
	return strings.Fields(v), nil
}
