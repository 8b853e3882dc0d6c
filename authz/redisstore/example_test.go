package redisstore_test

import (
	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/authz/redisstore"
)

// One Store serves every authz store, on a single server, Sentinel or
// Cluster alike.
func ExampleNew() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"127.0.0.1:6379"},
		ContextTimeoutEnabled: true,
	})
	defer rdb.Close()
	store := redisstore.New(rdb, &redisstore.Options{KeyPrefix: "remotemcp:"})
	defer store.Close()

	_ = as.Stores{
		Clients: store, Pending: store, Codes: store, Grants: store, Refresh: store, Consents: store,
		// ... and upstream.NewVault(store, store, keys, upstream, nil) for the upstream tokens.
	}
}
