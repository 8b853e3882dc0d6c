package redisstore_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/redisstore"
	"github.com/remotemcp/remotemcp/mcpserver/storetest"
)

// TestContractCluster runs the contract suite on Redis Cluster (one node
// serving every slot): every script's keys must share a slot (Redis
// refuses a CROSSSLOT script even on one node), and the pub/sub hub, the
// inbox pattern included, must work through a ClusterClient.
func TestContractCluster(t *testing.T) {
	addr := startCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{addr}, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
	t.Cleanup(func() { rdb.Close() })
	storetest.Run(t, func(t *testing.T) mcpserver.Stores {
		return newStores(t, rdb, &redisstore.Options{KeyPrefix: uniquePrefix()})
	})
}

// startCluster starts a cluster-enabled redis-server that serves every
// slot, and stops it (by its PID) when the test ends.
func startCluster(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	port, bus := freePort(t), freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	eventually(t, "redis-server answers", func() error { return rdb.Ping(ctx).Err() })
	if err := rdb.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	eventually(t, "cluster_state:ok", func() error {
		info, err := rdb.ClusterInfo(ctx).Result()
		if err == nil && !strings.Contains(info, "cluster_state:ok") {
			err = os.ErrNotExist
		}
		return err
	})
	return addr
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
