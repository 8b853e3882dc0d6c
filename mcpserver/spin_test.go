package mcpserver_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
)

// TestDetachedGETEndsOnClientData: a client that sends anything on a GET
// stream's connection after its request (the response says "Connection:
// close") ends the stream at once, rather than the server reading on a
// byte per system call (8 MiB of junk cost seconds of CPU).
func TestDetachedGETEndsOnClientData(t *testing.T) {
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
	if _, err := c.Write([]byte("junk")); err != nil {
		t.Fatal(err)
	}
	// The body ends (final chunk, then close) well before the deadline.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("the stream did not end cleanly after client data: %v", err)
	}
}
