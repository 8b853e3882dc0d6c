package redisstore_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/internal/redistest"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/redisstore"
	"github.com/remotemcp/remotemcp/mcpserver/storetest"
)

// TestContractCluster runs the contract suite on Redis Cluster (one node
// serving every slot): every script's keys must share a slot (Redis
// refuses a CROSSSLOT script even on one node), and the pub/sub hub, the
// inbox pattern included, must work through a ClusterClient.
func TestContractCluster(t *testing.T) {
	addr := redistest.StartCluster(t).Addr
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{addr}, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
	t.Cleanup(func() { rdb.Close() })
	storetest.Run(t, func(t *testing.T) mcpserver.Stores {
		return newStores(t, rdb, &redisstore.Options{KeyPrefix: uniquePrefix()})
	})
}
