package redisstore

import (
	"context"
	"strings"
	"time"
)

// AdvanceClock moves every record of the store d into the future, as if d
// had passed on Redis's clock, which a test cannot set: each key's TTL is d
// shorter (a key whose TTL runs out is deleted) and each export's expiry,
// its score in an owner's :expiries, is d earlier. Notes' :updated scores
// are times of writes, not of expiry: they stay. The contract suite's
// expiry checks use it instead of sleeping through ExportTTL.
func (s *Store) AdvanceClock(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	iter := s.rdb.Scan(ctx, 0, s.prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if strings.HasSuffix(key, "}:expiries") {
			ids, err := s.rdb.ZRange(ctx, key, 0, -1).Result()
			if err != nil {
				return err
			}
			for _, id := range ids {
				if err := s.rdb.ZIncrBy(ctx, key, -float64(d.Milliseconds()), id).Err(); err != nil {
					return err
				}
			}
		}
		ttl, err := s.rdb.PTTL(ctx, key).Result()
		if err != nil {
			return err
		}
		switch {
		case ttl <= 0: // no TTL (-1), or gone (-2)
		case ttl <= d:
			err = s.rdb.Del(ctx, key).Err()
		default:
			err = s.rdb.PExpire(ctx, key, ttl-d).Err()
		}
		if err != nil {
			return err
		}
	}
	return iter.Err()
}
