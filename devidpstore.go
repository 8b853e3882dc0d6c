package remotemcp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/cmd/remotemcp/devidp"
)

// devIdPStore keeps the development identity provider's records in Redis
// (Options.RedisURL), so that replicas sharing Redis serve one provider: a
// sign-in started on one finishes on another. Each record is one string
// key, remotemcp:{devidp:<kind>:<hash>}, with its TTL (at most the
// provider's refresh-token lifetime, 24 h).
type devIdPStore struct{ rdb redis.UniversalClient }

var _ devidp.Store = devIdPStore{}

func devIdPKey(k string) string { return "remotemcp:{devidp:" + k + "}" }

func (s devIdPStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return s.rdb.Set(ctx, devIdPKey(k), v, ttl).Err()
}

func (s devIdPStore) Get(ctx context.Context, k string) ([]byte, error) {
	return devIdPValue(s.rdb.Get(ctx, devIdPKey(k)).Bytes())
}

func (s devIdPStore) Take(ctx context.Context, k string) ([]byte, error) {
	return devIdPValue(s.rdb.GetDel(ctx, devIdPKey(k)).Bytes())
}

func (s devIdPStore) Claim(ctx context.Context, k string, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, devIdPKey(k), "1", ttl).Result()
}

func devIdPValue(b []byte, err error) ([]byte, error) {
	if errors.Is(err, redis.Nil) {
		return nil, devidp.ErrNotFound
	}
	return b, err
}

// devIdPSecret is the development provider's client secret, derived from
// the cookie key (Proxy.CookieKey): replicas share that key (RedisURL
// requires it), so one replica's authorization server authenticates at
// another's provider. Without a configured key the secret is made up for
// the process.
func devIdPSecret(cookieKey []byte) string {
	if cookieKey == nil {
		cookieKey = make([]byte, 32)
		rand.Read(cookieKey)
	}
	m := hmac.New(sha256.New, cookieKey)
	m.Write([]byte("remotemcp development identity provider client secret"))
	return hex.EncodeToString(m.Sum(nil))
}
