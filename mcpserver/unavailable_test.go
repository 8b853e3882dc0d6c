package mcpserver_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/remotemcp/remotemcp/mcpserver"
)

// unreachableError is what a store's client says when its server does not
// answer: internal addresses included.
type unreachableError struct{}

func (unreachableError) Error() string {
	return "read tcp 127.0.0.1:51704->127.0.0.1:43441: i/o timeout"
}
func (unreachableError) Unavailable() bool { return true }

var errUnreachable error = unreachableError{}

func TestIsUnavailable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boom"), false},
		{errUnreachable, true},
		{errors.Join(errors.New("put"), errUnreachable), true},
	} {
		if got := mcpserver.IsUnavailable(tt.err); got != tt.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestStoreUnavailable: a tool or resource whose store cannot be reached
// gets its request answered 503 with Retry-After in both eras, as every
// other path that finds a store unreachable; if the response had already
// started (a progress notification), the error is a generic JSON-RPC
// error. The store's error text never reaches the client.
func TestStoreUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	sid := e.initialize(t, "", mcpserver.Version20250618, "{}")
	modern := func(method, name, params string) request {
		return request{version: mcpserver.Version20260728, body: modernBody(method, mcpserver.Version20260728, params),
			edit: func(r *http.Request) { r.Header.Set("Mcp-Method", method); r.Header.Set("Mcp-Name", name) }}
	}
	legacy := func(method, params string) request {
		return request{version: mcpserver.Version20250618, session: sid, body: callBody(2, method, params)}
	}
	for _, tt := range []struct {
		name string
		req  request
	}{
		{"modern tools/call", modern("tools/call", "unreachable", `,"name":"unreachable","arguments":{}`)},
		{"modern resources/read", modern("resources/read", "notes://down", `,"uri":"notes://down"`)},
		{"legacy tools/call", legacy("tools/call", `{"name":"unreachable","arguments":{}}`)},
		{"legacy resources/read", legacy("resources/read", `{"uri":"notes://down"}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(t, tt.req)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("status %d, Retry-After %q: %s; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
			if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "timeout") {
				t.Errorf("the store's error reached the client: %s", body)
			}
			if !strings.Contains(string(body), "temporarily unavailable") {
				t.Errorf("body %s does not say the service is temporarily unavailable", body)
			}
		})
	}

	t.Run("modern, after progress", func(t *testing.T) {
		req := modern("tools/call", "unreachable", "")
		req.body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"unreachable","arguments":{},"_meta":{"progressToken":"p",` +
			`"io.modelcontextprotocol/protocolVersion":"` + mcpserver.Version20260728 + `","io.modelcontextprotocol/clientCapabilities":{}}}}`
		resp := e.do(t, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, readBody(t, resp))
		}
		m := lastMessage(t, resp)
		if m.Error == nil || !strings.Contains(m.Error.Message, "temporarily unavailable") || strings.Contains(m.Error.Message, "127.0.0.1") {
			t.Errorf("last message = %+v, want a generic unavailable error", m)
		}
	})
}
