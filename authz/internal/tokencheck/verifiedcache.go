package tokencheck

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Cache remembers what a verifier learned from the tokens it
// verified, by the SHA-256 of the token, up to a number of them, each until
// it expires. It holds no token, only its hash: a heap dump yields nothing
// usable.
type Cache[V any] struct {
	mu  sync.Mutex
	max int
	m   map[[sha256.Size]byte]verifiedEntry[V]
}

type verifiedEntry[V any] struct {
	v   V
	exp time.Time
}

// NewCache returns a cache of size entries: 0 means 10 000, and a
// negative size none (nil).
func NewCache[V any](size int) *Cache[V] {
	switch {
	case size == 0:
		size = 10000
	case size < 0:
		return nil
	}
	return &Cache[V]{max: size, m: map[[sha256.Size]byte]verifiedEntry[V]{}}
}

// Get returns what the cache remembers under key.
func (c *Cache[V]) Get(key [sha256.Size]byte) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e.v, ok
}

// Put remembers v until exp. When the cache is full it first drops what
// has expired, then, if still full, an arbitrary half: a client whose
// token is dropped pays one more signature check.
func (c *Cache[V]) Put(key [sha256.Size]byte, v V, exp, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, old := range c.m {
			if !now.Before(old.exp) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max/2 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = verifiedEntry[V]{v, exp}
}

// Len is the number of tokens the cache remembers.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
