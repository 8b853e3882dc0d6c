package redisstore_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/internal/redistest"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/redisstore"
)

// A severer dials Redis for one replica and can cut it off: it closes
// every connection it made and refuses new ones until healed.
type severer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (s *severer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut {
		return nil, errors.New("severed")
	}
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
	if err == nil {
		s.conns = append(s.conns, c)
	}
	return c, err
}

func (s *severer) sever() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut = true
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *severer) heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut = false
}

// TestMissedInvalidationAfterReconnect deletes a session on replica B
// while replica A, which has its record cached, is cut off from Redis, so
// that A misses the invalidation; A's pub/sub connection then reconnects
// (and would again answer the PINGs that HeardBroadcaster, removed, took
// as proof). 3s after the DELETE, past the cache's 2s bound, a call of the
// session on A must not run its tool.
func TestMissedInvalidationAfterReconnect(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix()
	cut := &severer{}
	rdbA := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true, Dialer: cut.dial,
		DialTimeout: time.Second, DialerRetries: 2})
	t.Cleanup(func() { rdbA.Close() })
	var runs atomic.Int64
	mcpsA := newMCPServer()
	mcp.AddTool(mcpsA, &mcp.Tool{Name: "count"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		runs.Add(1)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "counted"}}}, nil, nil
	})
	var urls []string
	for _, p := range []struct {
		rdb  redis.UniversalClient
		mcps *mcp.Server
	}{{rdbA, mcpsA}, {newClient(t, srv), newMCPServer()}} {
		h := mcpserver.NewHandler(p.mcps, newStores(t, p.rdb, &redisstore.Options{KeyPrefix: prefix}), nil)
		t.Cleanup(func() { h.Close() })
		hs := httptest.NewServer(h)
		t.Cleanup(hs.Close)
		urls = append(urls, hs.URL)
	}
	urlA, urlB := urls[0], urls[1]

	ctx := t.Context()
	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: urlA, DisableStandaloneSSE: true},
		&mcp.ClientSessionOptions{ProtocolVersion: mcpserver.Version20251125})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for range 2 { // the second from A's cache
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "count"}); err != nil {
			t.Fatalf("call on A: %v", err)
		}
	}

	cut.sever()
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, urlB, nil)
	req.Header.Set("Mcp-Session-Id", cs.ID())
	req.Header.Set("MCP-Protocol-Version", mcpserver.Version20251125)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE on B = %d", resp.StatusCode)
	}
	deleted := time.Now()
	time.Sleep(300 * time.Millisecond)
	cut.heal()
	time.Sleep(time.Until(deleted.Add(3 * time.Second)))

	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "count"})
	if err == nil {
		t.Error("a call on A 3s after DELETE on B succeeded")
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("the tool ran %d times, want 2: it ran for a session deleted 3s before on another replica", n)
	}
}
