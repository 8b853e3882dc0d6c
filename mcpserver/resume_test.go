package mcpserver_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
)

// A storeClock is the stores' clock in the resume-window tests: it moves
// only when told.
type storeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *storeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *storeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestResumeWindow checks that a completed request stream can be resumed
// on any replica within the resume window, and that a resume after it gets
// what a resume of an unknown stream gets: a fresh GET stream, at once,
// that replays nothing of the request.
func TestResumeWindow(t *testing.T) {
	const window = time.Minute
	clock := &storeClock{t: time.Now()}
	stores := memstore.New(&memstore.Options{ResumeWindow: window, Now: clock.Now})
	urls := []string{serve(t, stores, nil), serve(t, stores, nil)}
	e := &env{url: urls[0], stores: stores}
	const version = mcpserver.Version20251125
	sid := e.initialize(t, "alice", version, "{}")
	resp := e.do(t, request{token: "alice", version: version, session: sid,
		body: callBody(2, "tools/call", `{"name":"steps","arguments":{},"_meta":{"progressToken":"p"}}`)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	events := readEvents(t, resp)
	if len(events) != 4 {
		t.Fatalf("request stream has %d events, want priming + 3", len(events))
	}
	resume := func(t *testing.T, url string) *http.Response {
		t.Helper()
		resp := do(t, url, request{method: http.MethodGet, token: "alice", version: version, session: sid,
			edit: func(r *http.Request) { r.Header.Set("Last-Event-ID", events[1].ID) }})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
		}
		return resp
	}

	clock.Advance(window - time.Second)
	for i, url := range urls {
		if got := readEvents(t, resume(t, url)); len(got) != 2 || got[1].ID != events[3].ID {
			t.Errorf("resume on replica %d within the window replayed %+v, want the last two events", i, got)
		}
	}

	clock.Advance(2 * time.Second) // reading it did not extend the window
	for i, url := range urls {
		resp := resume(t, url)
		r := newSSEReader(resp.Body)
		first, err := r.next()
		if err != nil {
			t.Fatalf("replica %d: read: %v", i, err)
		}
		if !strings.HasPrefix(first.ID, "_-") || first.Data != "" {
			t.Errorf("replica %d: first event after the window = %+v, want the priming event of the GET stream", i, first)
		}
		// What arrives next is the session's, not the request's.
		if err := stores.Broadcaster.Publish(t.Context(), mcpserver.Broadcast{Method: "notifications/tools/list_changed"}); err != nil {
			t.Fatal(err)
		}
		next, err := r.next()
		if err != nil {
			t.Fatalf("replica %d: read: %v", i, err)
		}
		if m := decodeMessage(t, []byte(next.Data)); m.Method != "notifications/tools/list_changed" || !strings.HasPrefix(next.ID, "_-") {
			t.Errorf("replica %d: event after the window = %+v, want a GET stream notification", i, next)
		}
		resp.Body.Close()
	}
}
