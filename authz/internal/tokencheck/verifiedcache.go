package tokencheck

import (
	"crypto/sha256"

	"github.com/remotemcp/remotemcp/internal/ttlcache"
)

// Cache remembers what a verifier learned from the tokens it verified, by
// the SHA-256 of the token, up to a number of them, each until it expires
// (its exp plus the verifier's clock skew: from then on the token is
// refused, so what the cache knew of it is of no use). It holds no token,
// only its hash: a heap dump yields nothing usable. When full, the token
// verified longest ago goes first: a client whose token is dropped pays one
// more signature check.
type Cache[V any] = ttlcache.Cache[[sha256.Size]byte, V]

// NewCache returns a cache of size entries: 0 means 10 000, and a
// negative size none (nil).
func NewCache[V any](size int) *Cache[V] {
	switch {
	case size == 0:
		size = 10000
	case size < 0:
		return nil
	}
	return ttlcache.New[[sha256.Size]byte, V](size)
}
