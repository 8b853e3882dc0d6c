package authz

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"sync"
	"time"
)

// A verifiedToken is what Issuer.Verify learned from a token whose
// signature and claims it checked.
type verifiedToken struct {
	// pub is the key that verified the signature: a later request is
	// answered from the cache only while the ring still maps kid to this
	// very key, so that a kid reused for another key re-verifies.
	pub                          *ecdsa.PublicKey
	kid, sub, clientID, jti, gid string
	scopes                       []string
	exp                          time.Time
	// extra is clientID, jti and gid as the values of TokenInfo.Extra,
	// boxed once here rather than on every request.
	extra [3]any
}

// verifiedCache remembers verified tokens by the SHA-256 of the token, up
// to a number of them, each until it expires. It holds no token, only its
// hash: a heap dump yields nothing usable.
type verifiedCache struct {
	mu  sync.Mutex
	max int
	m   map[[sha256.Size]byte]*verifiedToken
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, m: map[[sha256.Size]byte]*verifiedToken{}}
}

func (c *verifiedCache) get(key [sha256.Size]byte) (*verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

// put remembers v. When the cache is full it first drops what has
// expired, then, if still full, an arbitrary half: a client whose token
// is dropped pays one more signature check.
func (c *verifiedCache) put(key [sha256.Size]byte, v *verifiedToken, now time.Time) {
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
	c.m[key] = v
}
