package redisstore_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
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

// newMCPServer is one replica's MCP server: an echo tool, a tool that
// elicits, and a subscribable resource.
func newMCPServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "replica", Version: "1.0.0"}, &mcp.ServerOptions{
		SupportedProtocolVersions: mcpserver.SupportedVersions,
		SubscribeHandler:          func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler:        func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	type echoIn struct {
		Text string `json:"text"`
	}
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text(in.Text), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
			Message:         "Your name?",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}},
		})
		if err != nil {
			return nil, nil, err
		}
		return text(res.Action + ": " + res.Content["name"].(string)), nil, nil
	})
	s.AddResource(&mcp.Resource{URI: "notes://anonymous/1", Name: "note"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "hello"}}}, nil
		})
	return s
}

// TestTwoReplicas runs a go-sdk client on a legacy session through a
// round-robin balancer in front of two replicas, each with its own Redis
// client, so that consecutive requests of the session, the response to an
// elicitation and a resumed stream land on alternating replicas.
func TestTwoReplicas(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix()
	var replicas []http.Handler
	var stores []mcpserver.Stores
	resumed := make(chan struct{}, 1) // a GET resuming a stream reached the balancer
	for range 2 {
		s := newStores(t, newClient(t, srv), &redisstore.Options{KeyPrefix: prefix})
		mcps := newMCPServer()
		// pause closes its SSE stream before answering, and answers once
		// the client resumed it (with Last-Event-ID), on the other replica.
		mcp.AddTool(mcps, &mcp.Tool{Name: "pause"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			req.Extra.CloseSSEStream(mcp.CloseSSEStreamArgs{RetryAfter: 10 * time.Millisecond})
			select {
			case <-resumed:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "resumed"}}}, nil, nil
		})
		h := mcpserver.NewHandler(mcps, s, &mcpserver.Options{KeepAlive: time.Second})
		t.Cleanup(func() { h.Close() })
		replicas, stores = append(replicas, h), append(stores, s)
	}
	// The balancer alternates, and notes which replica served what.
	var n atomic.Int64
	var mu sync.Mutex
	var log []routed
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1) % 2)
		e := routed{replica: i, method: r.Method, resume: r.Header.Get("Last-Event-ID") != ""}
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var m struct {
				Method string `json:"method"`
				Params struct {
					Name string `json:"name"`
				} `json:"params"`
			}
			json.Unmarshal(body, &m)
			e.rpc = cmp.Or(m.Params.Name, m.Method, "response")
		}
		mu.Lock()
		log = append(log, e)
		mu.Unlock()
		if e.resume {
			select {
			case resumed <- struct{}{}:
			default:
			}
		}
		replicas[i].ServeHTTP(w, r)
	}))
	t.Cleanup(lb.Close)

	updated := make(chan string, 1)
	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1.0.0"}, &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		},
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			select {
			case updated <- req.Params.URI:
			default:
			}
		},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: lb.URL}, &mcp.ClientSessionOptions{ProtocolVersion: mcpserver.Version20251125})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer cs.Close()
	if cs.ID() == "" {
		t.Fatal("no legacy session: the client negotiated the stateless revision")
	}

	call := func(name string, args any) string {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.IsError || len(res.Content) != 1 {
			t.Fatalf("%s = %+v", name, res)
		}
		return res.Content[0].(*mcp.TextContent).Text
	}
	for i := range 4 {
		if got := call("echo", map[string]any{"text": "hi"}); got != "hi" {
			t.Errorf("echo %d = %q", i, got)
		}
	}
	for range 2 { // the response is POSTed to the other replica (checked below)
		if got := call("ask", map[string]any{}); got != "accept: Ada" {
			t.Errorf("ask = %q, want the elicitation's answer", got)
		}
	}
	if got := call("pause", map[string]any{}); got != "resumed" {
		t.Errorf("pause = %q, want the result after a resumed stream", got)
	}

	// A resource update published on either replica reaches the session's
	// GET stream, wherever it is served.
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "notes://anonymous/1"}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	for i, s := range stores {
		deadline := time.After(5 * time.Second)
	wait:
		for {
			// The GET stream may not be subscribed yet: publish until it arrives.
			if err := mcpserver.NewNotifier(s.Broadcaster).ResourceUpdated(ctx, mcpserver.Anonymous, "notes://anonymous/1"); err != nil {
				t.Fatal(err)
			}
			select {
			case uri := <-updated:
				if uri != "notes://anonymous/1" {
					t.Errorf("updated %q", uri)
				}
				break wait
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				t.Fatalf("a resource update published on replica %d did not reach the client", i)
			}
		}
	}

	// Check that the interesting requests did cross replicas.
	mu.Lock()
	defer mu.Unlock()
	var askOn, pauseOn = -1, -1
	var crossAnswer, crossResume bool
	for _, e := range log {
		t.Logf("replica %d: %s %s resume=%v", e.replica, e.method, e.rpc, e.resume)
		switch {
		case e.rpc == "ask":
			askOn = e.replica
		case e.rpc == "pause":
			pauseOn = e.replica
		case e.rpc == "response" && askOn >= 0 && e.replica != askOn:
			crossAnswer = true
		case e.method == http.MethodGet && e.resume && pauseOn >= 0 && e.replica != pauseOn:
			crossResume = true
		}
	}
	if !crossAnswer {
		t.Errorf("no elicitation response was served by another replica than its tool call")
	}
	if !crossResume {
		t.Errorf("the paused stream was not resumed on another replica")
	}
}

// A routed request: which replica served it.
type routed struct {
	replica int
	method  string
	rpc     string // the tool called, else the JSON-RPC method, else "response"
	resume  bool   // it carried Last-Event-ID
}

// tripCounter counts the round trips of every connection it dials, as the
// benchmark's proxy does (bench/cmd/mcpbench): a round trip starts when the
// client sends after having received (or for the first time), so that a
// pipeline or a script is one, pub/sub commands count, and messages Redis
// pushes to a subscriber do not.
type tripCounter struct{ n atomic.Int64 }

func (tc *tripCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &tripConn{Conn: c, tc: tc}, nil
}

type tripConn struct {
	net.Conn
	tc   *tripCounter
	mu   sync.Mutex
	turn bool // the client has the floor: what it sends belongs to the round trip counted
}

func (c *tripConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.turn {
		c.turn = true
		c.tc.n.Add(1)
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *tripConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.turn = false
		c.mu.Unlock()
	}
	return n, err
}

// TestToolCallRoundTrips counts the Redis round trips of legacy tools/calls
// through a Handler, on every connection of its client (pub/sub included),
// and fails if they grow: one per call that finishes within
// StreamDelay, in the steady state of a session (its record cached), and
// two for one that runs longer (open and lease its stream; end it).
func TestToolCallRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	trips := &tripCounter{}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true, Dialer: trips.dial})
	t.Cleanup(func() { rdb.Close() })
	// slow answers once its stream is opened (StreamDelay passed): the
	// hook tells when the write script runs while a slow call waits.
	var slowWaits atomic.Bool
	opened := make(chan struct{}, 1)
	write := "evalsha " + redisstore.WriteScript.Hash()[:8]
	hook := &countHook{sent: func(name string) {
		if name == write && slowWaits.CompareAndSwap(true, false) {
			opened <- struct{}{}
		}
	}}
	rdb.AddHook(hook)
	s := newStores(t, rdb, &redisstore.Options{KeyPrefix: uniquePrefix()})
	mcps := newMCPServer()
	mcp.AddTool(mcps, &mcp.Tool{Name: "slow"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		slowWaits.Store(true)
		select {
		case <-opened:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "slow"}}}, nil, nil
	})
	clock := &fakeClock{t: time.Now()}
	h := mcpserver.NewHandler(mcps, s, &mcpserver.Options{StreamDelay: 100 * time.Millisecond, Now: clock.Now})
	t.Cleanup(func() { h.Close() })
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)

	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1.0.0"}, nil)
	ctx := t.Context()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: hs.URL, DisableStandaloneSSE: true},
		&mcp.ClientSessionOptions{ProtocolVersion: mcpserver.Version20251125})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	call := func(tool string) {
		t.Helper()
		var args any
		if tool == "echo" {
			args = map[string]any{"text": "hi"}
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError {
			t.Fatalf("%s: %+v", tool, res.Content[0])
		}
	}
	scripts := map[string]string{}
	for name, sc := range map[string]*redis.Script{"read": redisstore.ReadScript, "write": redisstore.WriteScript} {
		scripts["evalsha "+sc.Hash()[:8]] = name
	}
	for _, tt := range []struct {
		tool  string
		n     int
		pause time.Duration // of the Handler's clock, before each call
		want  float64       // round trips per call, at most
	}{
		{"echo", 50, 0, 1},
		// Past the cache's 2s bound, the session record is read again.
		{"echo", 2, 2500 * time.Millisecond, 2},
		{"slow", 5, 0, 2},
	} {
		call(tt.tool) // scripts loaded, session cached
		before := trips.n.Load()
		hook.reset()
		for range tt.n {
			clock.Advance(tt.pause)
			call(tt.tool)
		}
		got := float64(trips.n.Load()-before) / float64(tt.n)
		t.Logf("a legacy tools/call of %s after %v takes %.2f Redis round trips:", tt.tool, tt.pause, got)
		for name, k := range hook.reset() {
			t.Logf("  %-20s %.2f", cmp.Or(scripts[name], name), float64(k)/float64(tt.n))
		}
		if got > tt.want {
			t.Errorf("a legacy tools/call of %s after %v takes %.2f Redis round trips, want at most %v", tt.tool, tt.pause, got, tt.want)
		}
	}
}
