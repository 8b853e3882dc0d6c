package mcpserver_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
)

// TestGETStreamGoroutines checks what an idle GET stream costs in
// goroutines: net/http's two for an HTTP/1.1 request (the one that runs
// the handler, which waits on the stream's log, and its read of the
// connection), none of the stream's own and no subscription relay: the
// replica fans broadcasts out to its streams from one subscription.
//
// The streams are opened over raw connections, so that the client holds no
// goroutines in this process, and counted once each has delivered its
// priming event, so that the count does not depend on timing.
func TestGETStreamGoroutines(t *testing.T) {
	const (
		n       = 200
		version = mcpserver.Version20251125
		// perStream: net/http's connection goroutine and its read.
		perStream = 2
		// slack absorbs goroutines that come and go by themselves (the
		// runtime's, the test server's).
		slack = 10
	)
	stores := memstore.New(&memstore.Options{MaxSessionsPerSubject: n}) // all anonymous
	e := &env{url: serve(t, stores, nil), stores: stores}
	sessions := make([]string, n)
	for i := range sessions {
		sessions[i] = e.initialize(t, "", version, "{}")
	}
	http.DefaultClient.CloseIdleConnections()
	u, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	settle()
	before := runtime.NumGoroutine()
	for _, sid := range sessions {
		c, err := net.DialTimeout("tcp", u.Host, timeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(timeout))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nMCP-Protocol-Version: %s\r\nMcp-Session-Id: %s\r\n\r\n", u.Host, version, sid)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET status = %d", resp.StatusCode)
		}
		// The priming event: the stream is registered and waits.
		if _, err := newSSEReader(resp.Body).next(); err != nil {
			t.Fatalf("priming event: %v", err)
		}
	}
	settle()
	if got := runtime.NumGoroutine() - before; got > n*perStream+slack {
		t.Errorf("%d idle GET streams added %d goroutines (%.2f per stream), want at most %d per stream", n, got, float64(got)/n, perStream)
	}
}

// settle lets goroutines that were ending finish.
func settle() {
	for range 10 {
		runtime.Gosched()
	}
	runtime.GC()
}

// TestGETStreamTransports checks a GET stream over HTTP/1.1 and HTTP/2:
// either sends keep-alives while idle, delivers broadcasts, and ends
// cleanly (no truncated body) when a newer GET replaces it or the session
// is deleted.
func TestGETStreamTransports(t *testing.T) {
	for _, tt := range []struct {
		name  string
		http2 bool
	}{
		{"HTTP/1.1", false},
		{"HTTP/2", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const version = mcpserver.Version20251125
			stores := memstore.New(nil)
			h := mcpserver.NewHandler(newServer(), stores, &mcpserver.Options{KeepAlive: 20 * time.Millisecond})
			srv := httptest.NewUnstartedServer(h)
			srv.EnableHTTP2 = tt.http2
			srv.StartTLS()
			t.Cleanup(srv.Close)
			t.Cleanup(func() { h.Close() })
			client := srv.Client()
			send := func(method, sid, body string) *http.Response {
				t.Helper()
				var rd io.Reader
				if body != "" {
					rd = strings.NewReader(body)
				}
				req, err := http.NewRequestWithContext(t.Context(), method, srv.URL, rd)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("MCP-Protocol-Version", version)
				if sid != "" {
					req.Header.Set("Mcp-Session-Id", sid)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", method, err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				if want := map[bool]int{false: 1, true: 2}[tt.http2]; resp.ProtoMajor != want {
					t.Fatalf("%s went over %s, want HTTP/%d", method, resp.Proto, want)
				}
				return resp
			}
			init := send(http.MethodPost, "", initializeBody(version, "{}"))
			readBody(t, init)
			sid := init.Header.Get("Mcp-Session-Id")
			if resp := send(http.MethodPost, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); resp.StatusCode != http.StatusAccepted {
				t.Fatalf("notifications/initialized: status %d", resp.StatusCode)
			}
			open := func() *bufio.Reader {
				t.Helper()
				resp := send(http.MethodGet, sid, "")
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
					t.Fatalf("GET: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				return bufio.NewReader(resp.Body)
			}
			// readUntil reads lines up to one that starts with prefix.
			readUntil := func(br *bufio.Reader, prefix string) {
				t.Helper()
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("reading up to %q: %v", prefix, err)
					}
					if strings.HasPrefix(line, prefix) {
						return
					}
				}
			}
			// ends checks that the stream ends without an error (a
			// complete body).
			ends := func(br *bufio.Reader) {
				t.Helper()
				_, err := io.Copy(io.Discard, br)
				if err != nil && !errors.Is(err, io.EOF) {
					t.Errorf("the stream ended with %v, want a complete body", err)
				}
			}

			first := open()
			readUntil(first, "id: _-0") // priming
			readUntil(first, ": keep-alive")
			if err := stores.Broadcaster.Publish(t.Context(), mcpserver.Broadcast{Method: "notifications/tools/list_changed"}); err != nil {
				t.Fatal(err)
			}
			readUntil(first, `data: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"`)
			second := open()
			ends(first)
			readUntil(second, "id: _-1") // priming, after the broadcast
			if resp := send(http.MethodDelete, sid, ""); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE: status %d", resp.StatusCode)
			}
			ends(second)
		})
	}
}

// TestGETAfterClose checks that a Handler that was closed opens no GET
// stream: the GET gets 503 (nothing would end the stream, since Close has
// ended those it knew).
func TestGETAfterClose(t *testing.T) {
	const version = mcpserver.Version20251125
	h := mcpserver.NewHandler(newServer(), memstore.New(nil), nil)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	sid := initialize(t, srv.URL, "", version, "{}")
	h.Close()
	resp := do(t, srv.URL, request{method: http.MethodGet, version: version, session: sid})
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") {
		t.Errorf("GET after Close: status %d %s, want 503 shutting down", resp.StatusCode, body)
	}
}

// TestGETAfterStreamsEnded checks that a GET whose request's context is
// already done (the http.Server ends its streams so while it shuts down,
// through BaseContext) gets 503 rather than a stream that ends at once.
func TestGETAfterStreamsEnded(t *testing.T) {
	const version = mcpserver.Version20251125
	stores := memstore.New(nil)
	h, url := replica(t, stores, nil)
	sid := initialize(t, url, "", version, "{}")
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	draining := httptest.NewUnstartedServer(h)
	draining.Config.BaseContext = func(net.Listener) context.Context { return ended }
	draining.Start()
	t.Cleanup(draining.Close)
	resp := do(t, draining.URL, request{method: http.MethodGet, version: version, session: sid})
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET with its streams ended: status %d %s (Retry-After %q), want 503 shutting down", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}

// TestGETStreamClientData: a client that sends anything on a GET stream's
// connection after its request neither ends the stream nor makes the
// server read on (net/http leaves it for after the response): the stream
// still delivers, and ends with a complete body when its session is
// deleted.
func TestGETStreamClientData(t *testing.T) {
	stores := memstore.New(nil)
	_, url := replica(t, stores, nil)
	const version = mcpserver.Version20251125
	sid := initialize(t, url, "", version, `{}`)
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nMcp-Session-Id: "+sid+"\r\nMcp-Protocol-Version: "+version+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET = %d %q, want an SSE stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := newSSEReader(resp.Body)
	if _, err := events.next(); err != nil {
		t.Fatalf("priming event: %v", err)
	}
	if _, err := c.Write([]byte("junk")); err != nil {
		t.Fatal(err)
	}
	if err := stores.Broadcaster.Publish(t.Context(), mcpserver.Broadcast{Method: "notifications/tools/list_changed"}); err != nil {
		t.Fatal(err)
	}
	if e, err := events.next(); err != nil || !strings.Contains(e.Data, "notifications/tools/list_changed") {
		t.Fatalf("after client data: event %+v, %v; want the broadcast", e, err)
	}
	if resp := do(t, url, request{method: http.MethodDelete, version: version, session: sid}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: status %d", resp.StatusCode)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("the stream did not end cleanly: %v", err)
	}
}
