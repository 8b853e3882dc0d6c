package redisstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz/upstream"
)

var _ upstream.TokenSwapper = (*Store)(nil)

// swapUnlessRevokedScript replaces KEYS[1] with ARGV[2] (TTL ARGV[3] ms)
// only if it still holds exactly ARGV[1] and the grant is not revoked
// (KEYS[2]): the fence of the vault's refresh. It returns 1 if it swapped.
var swapUnlessRevokedScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[2]) == 1 then return 0 end
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
return 1`)

// SwapUpstream implements upstream.TokenSwapper, in one round trip.
func (s *Store) SwapUpstream(ctx context.Context, grantID string, old, sealed *upstream.Sealed, ttl time.Duration) (swapped bool, err error) {
	if old == nil || sealed == nil {
		return false, errNilRecord
	}
	if ttl <= 0 {
		return false, errNoTTL
	}
	defer wrapf(&err, "redisstore: swap upstream tokens of grant %s", grantID)
	// The stored value is json.Marshal of the record, as PutUpstream
	// writes it: marshalling is deterministic, so old compares as bytes.
	ob, err := json.Marshal(old)
	if err != nil {
		return false, err
	}
	nb, err := json.Marshal(sealed)
	if err != nil {
		return false, err
	}
	k := s.grantKeys(grantID)
	n, err := swapUnlessRevokedScript.Run(ctx, s.rdb, []string{k.upstream, k.revoked}, ob, nb, millis(ttl)).Int()
	return n == 1, err
}
