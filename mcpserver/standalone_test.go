package mcpserver_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
)

// TestGETStreamGoroutines checks what an idle GET stream costs in
// goroutines: net/http's two (the connection's, and its background read
// that notices the client leaving), and none of the Handler's own: the
// replica fans broadcasts out to its streams from one subscription.
//
// The streams are opened over raw connections, so that the client holds no
// goroutines in this process, and counted once each has delivered its
// priming event, so that the count does not depend on timing.
func TestGETStreamGoroutines(t *testing.T) {
	const (
		n       = 200
		version = mcpserver.Version20251125
		// perStream is net/http's: the connection and its background read.
		perStream = 2
		// slack absorbs goroutines that come and go by themselves (the
		// runtime's, the test server's).
		slack = 10
	)
	e := newEnv(t, nil)
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
