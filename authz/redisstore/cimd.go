package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
)

var _ as.MetadataCache = (*Store)(nil)

// cimdKey is the key of a cached metadata document: the URL hashed, so
// that keys stay short whatever the URL.
func (s *Store) cimdKey(clientID string) string {
	sum := sha256.Sum256([]byte(clientID))
	return s.key("cimd", hex.EncodeToString(sum[:]))
}

// GetMetadata implements as.MetadataCache: one GET.
func (s *Store) GetMetadata(ctx context.Context, clientID string) (_ *as.Client, err error) {
	defer wrapf(&err, "redisstore: get cached client metadata")
	c, err := get[as.Client](ctx, s.rdb, s.cimdKey(clientID))
	if err != nil {
		return nil, err
	}
	if c.ClientID != clientID { // a hash collision cannot happen; a bad record can
		return nil, authz.ErrNotFound
	}
	return c, nil
}

// PutMetadata implements as.MetadataCache: one SET with the document's
// cache lifetime.
func (s *Store) PutMetadata(ctx context.Context, c *as.Client, ttl time.Duration) (err error) {
	if c == nil {
		return errNilRecord
	}
	if ttl <= 0 {
		return errNoTTL
	}
	defer wrapf(&err, "redisstore: cache client metadata")
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.rdb.Set(ctx, s.cimdKey(c.ClientID), b, ttl).Err()
}
