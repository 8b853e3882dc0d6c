package redisstore_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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

// A logSignal is a slog.Handler that sends the message of every record to
// msgs, so that a test can wait for what a store logs.
type logSignal struct{ msgs chan string }

func (h logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h logSignal) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h logSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logSignal) WithGroup(string) slog.Handler      { return h }

// awaitLog waits until msgs receives a message that contains want.
func awaitLog(t *testing.T, msgs <-chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-msgs:
			if strings.Contains(m, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no log %q", want)
		}
	}
}

// A fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestMissedInvalidationAfterReconnect deletes a session on replica B
// while replica A, which has its record cached, is cut off from Redis, so
// that A misses the invalidation; A's pub/sub connection then reconnects.
// 3s after the DELETE on A's clock, past the cache's 2s bound, a call of
// the session on A must not run its tool: a reconnect proves nothing of
// what was missed.
func TestMissedInvalidationAfterReconnect(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix()
	cut := &severer{}
	logsA := make(chan string, 64)
	clockA := &fakeClock{t: time.Now()}
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
		log  *slog.Logger
		opts *mcpserver.Options
	}{
		{rdbA, mcpsA, slog.New(logSignal{logsA}), &mcpserver.Options{Now: clockA.Now}},
		{newClient(t, srv), newMCPServer(), nil, nil},
	} {
		h := mcpserver.NewHandler(p.mcps, newStores(t, p.rdb, &redisstore.Options{KeyPrefix: prefix, Logger: p.log}), p.opts)
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
	awaitLog(t, logsA, "pub/sub connection lost")
	cut.heal()
	awaitLog(t, logsA, "pub/sub connection restored")
	clockA.Advance(3 * time.Second)

	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "count"})
	if err == nil {
		t.Error("a call on A 3s after DELETE on B succeeded")
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("the tool ran %d times, want 2: it ran for a session deleted 3s before on another replica", n)
	}
}
