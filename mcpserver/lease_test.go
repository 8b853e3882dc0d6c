package mcpserver_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
)

// replica serves a Handler on stores (shared with other replicas) and
// returns it with its URL. Requests are anonymous.
func replica(t *testing.T, stores mcpserver.Stores, opts *mcpserver.Options) (*mcpserver.Handler, string) {
	t.Helper()
	h := mcpserver.NewHandler(newServer(), stores, opts)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { h.Close() })
	return h, srv.URL
}

// postUntilFirstEvent POSTs body to url and returns the ID of the first
// event of its SSE response; then the connection drops.
func postUntilFirstEvent(t *testing.T, url, version, sid, body string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", version)
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := newSSEReader(resp.Body)
	for {
		e, err := r.next()
		if err != nil {
			t.Fatalf("read POST stream: %v", err)
		}
		if e.ID != "" {
			return e.ID
		}
	}
}

// TestResumeAbandonedStream checks that a client resuming the stream of a
// request whose replica died (it stopped renewing the stream's lease and
// never answered) gets an error response for each unanswered request from
// the replica it resumes on, and the end of the stream.
func TestResumeAbandonedStream(t *testing.T) {
	const ttl = 500 * time.Millisecond
	for _, tt := range []struct {
		name    string
		version string
		body    string
		want    []string // ids of the expected error responses
	}{
		{"one call", mcpserver.Version20251125, callBody(7, "tools/call", `{"name":"block","arguments":{"key":"K"}}`), []string{"7"}},
		{"batch, one answered", mcpserver.Version20250326,
			`[` + callBody(7, "tools/call", `{"name":"echo","arguments":{"text":"hi"}}`) + `,` +
				`{"jsonrpc":"2.0","id":"eight","method":"tools/call","params":{"name":"block","arguments":{"key":"K"}}}]`,
			[]string{`"eight"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stores := memstore.New(nil)
			// A's own timeout must not be what ends the request.
			a, urlA := replica(t, stores, &mcpserver.Options{LeaseTTL: ttl, MaxRequestDuration: 10 * ttl})
			_, urlB := replica(t, stores, &mcpserver.Options{LeaseTTL: ttl, KeepAlive: ttl / 5})
			sid := initialize(t, urlA, "", tt.version, `{}`)
			mcpserver.StopLeaseRenewals(a) // A dies, as far as its leases go
			lastID := postUntilFirstEvent(t, urlA, tt.version, sid, tt.body)

			start := time.Now()
			get := do(t, urlB, request{method: http.MethodGet, version: tt.version, session: sid,
				edit: func(r *http.Request) { r.Header.Set("Last-Event-ID", lastID) }})
			if get.StatusCode != http.StatusOK {
				t.Fatalf("GET status = %d: %s", get.StatusCode, readBody(t, get))
			}
			msgs := messages(t, readEvents(t, get))
			if elapsed := time.Since(start); elapsed > 2*ttl {
				t.Errorf("the resumed stream ended after %v, want at most 2×LeaseTTL = %v", elapsed, 2*ttl)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, string(m.ID))
				if m.Error == nil || m.Error.Code != -32603 || !strings.Contains(m.Error.Message, "retry") {
					t.Errorf("resumed stream message = %+v, want an internal error asking to retry", m)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("resumed stream answered ids %v, want %v", got, tt.want)
			}
		})
	}
}

// TestResumeLiveStream checks that a stream whose replica is alive (it
// renews the lease) is not taken over, however long the request runs.
func TestResumeLiveStream(t *testing.T) {
	const ttl = 300 * time.Millisecond
	stores := memstore.New(nil)
	_, urlA := replica(t, stores, &mcpserver.Options{LeaseTTL: ttl})
	_, urlB := replica(t, stores, &mcpserver.Options{LeaseTTL: ttl})
	const version = mcpserver.Version20251125
	sid := initialize(t, urlA, "", version, `{}`)
	key, ch := newGate(t)
	lastID := postUntilFirstEvent(t, urlA, version, sid, callBody(7, "tools/call", `{"name":"wait","arguments":{"key":"`+key+`"}}`))
	get := do(t, urlB, request{method: http.MethodGet, version: version, session: sid,
		edit: func(r *http.Request) { r.Header.Set("Last-Event-ID", lastID) }})
	if get.StatusCode != http.StatusOK {
		t.Fatalf("GET status = %d: %s", get.StatusCode, readBody(t, get))
	}
	time.AfterFunc(4*ttl, func() { close(ch) })
	msgs := messages(t, readEvents(t, get))
	if len(msgs) != 1 || string(msgs[0].ID) != "7" {
		t.Fatalf("resumed stream = %+v, want the tools/call result only", msgs)
	}
	if got := toolText(t, msgs[0]); got != "waited" {
		t.Errorf("tools/call = %q, want %q", got, "waited")
	}
}

// failingLog is memstore's EventLog whose appends to an open stream fail,
// once armed, as a store that fails in the middle of a request would.
type failingLog struct {
	*memstore.Events
	armed atomic.Bool
}

func (l *failingLog) WriteStream(ctx context.Context, sid, stream string, w *mcpserver.StreamWrite) (int64, error) {
	if l.armed.Load() && w.Owner == "" && len(w.Events) > 0 {
		return 0, errors.New("append failed")
	}
	return l.Events.WriteStream(ctx, sid, stream, w)
}

// TestResponseNotLogged checks that a client whose request's response
// could not be logged is not kept waiting: its POST stream goes on from
// the log, where the request is answered with an error once the lease of
// its stream lapses.
func TestResponseNotLogged(t *testing.T) {
	const ttl = 300 * time.Millisecond
	stores := memstore.New(nil)
	log := &failingLog{Events: stores.Events.(*memstore.Events)}
	stores.Events = log
	_, url := replica(t, stores, &mcpserver.Options{LeaseTTL: ttl, StreamDelay: 10 * time.Millisecond, KeepAlive: ttl / 5})
	const version = mcpserver.Version20251125
	sid := initialize(t, url, "", version, `{}`)
	key, release := newGate(t)
	time.AfterFunc(200*time.Millisecond, func() {
		log.armed.Store(true) // the stream is open by now
		close(release)
	})
	resp := do(t, url, request{version: version, session: sid,
		body: callBody(7, "tools/call", `{"name":"wait","arguments":{"key":"`+key+`"}}`)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	msgs := messages(t, readEvents(t, resp))
	if len(msgs) != 1 || string(msgs[0].ID) != "7" || msgs[0].Error == nil || !strings.Contains(msgs[0].Error.Message, "retry") {
		t.Fatalf("POST stream = %+v, want an error response asking to retry", msgs)
	}
}
