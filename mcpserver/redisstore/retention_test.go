package redisstore_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/internal/redistest"
	"github.com/remotemcp/remotemcp/mcpserver/redisstore"
	"github.com/remotemcp/remotemcp/mcpserver/storetest"
)

func TestRetention(t *testing.T) {
	runRetention(t, newClient(t, redistest.Start(t)))
}

// TestRetentionCluster runs the retention tests on Redis Cluster (one node
// serving every slot): evicting a session's completed streams deletes keys
// of its slot that the script computes.
func TestRetentionCluster(t *testing.T) {
	addr := redistest.StartCluster(t).Addr
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{addr}, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
	t.Cleanup(func() { rdb.Close() })
	runRetention(t, rdb)
}

func runRetention(t *testing.T, rdb redis.UniversalClient) {
	storetest.RunRetention(t, func(t *testing.T, maxBytes int64) storetest.Timed {
		prefix := uniquePrefix()
		s := newStores(t, rdb, &redisstore.Options{
			KeyPrefix: prefix, SessionTTL: storetest.RetentionTTL, ResumeWindow: storetest.RetentionWindow, MaxLoggedBytes: maxBytes,
		})
		return storetest.Timed{
			Stores:  s,
			Advance: func(d time.Duration) { advance(t, rdb, prefix, d) },
			Size: func(sid string) (int, int64) {
				var n int
				var bytes int64
				for _, k := range scan(t, rdb, prefix+"{s:"+sid+"}") {
					m, err := rdb.MemoryUsage(t.Context(), k, 0).Result()
					if err == redis.Nil {
						continue // expired meanwhile
					} else if err != nil {
						t.Fatalf("MEMORY USAGE: %v", err)
					}
					n++
					bytes += m
				}
				return n, bytes
			},
		}
	})
}

// advance makes d pass for the keys under prefix, as if Redis' clock had
// moved on: each key expires d earlier (at once if that is past), and the
// times the stores keep in values (the scores of the stream indexes, the
// end of a lease) are d earlier too.
func advance(t *testing.T, rdb redis.UniversalClient, prefix string, d time.Duration) {
	t.Helper()
	ctx, ms := t.Context(), d.Milliseconds()
	for _, k := range scan(t, rdb, prefix) {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case "zset":
			members, err := rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range members {
				if err := rdb.ZIncrBy(ctx, k, float64(-ms), m.Member.(string)).Err(); err != nil {
					t.Fatal(err)
				}
			}
		case "hash":
			if ok, err := rdb.HExists(ctx, k, "until").Result(); err != nil {
				t.Fatal(err)
			} else if ok {
				if err := rdb.HIncrBy(ctx, k, "until", -ms).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		switch {
		case err != nil:
			t.Fatal(err)
		case ttl < 0:
			continue // gone meanwhile (a key without expiry fails TestEveryKeyHasTTL)
		case ttl <= d:
			err = rdb.Del(ctx, k).Err()
		default:
			err = rdb.PExpire(ctx, k, ttl-d).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
