package mcpserver_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
)

// tally returns how many times the tally tool ran for key.
func tally(key string) int64 {
	n, ok := tallies.Load(key)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// callTally calls the tally tool for key on url and returns the status.
func callTally(t *testing.T, url, sid, key string) int {
	t.Helper()
	resp := do(t, url, request{version: mcpserver.Version20251125, session: sid,
		body: callBody(9, "tools/call", `{"name":"tally","arguments":{"key":"`+key+`"}}`)})
	readBody(t, resp)
	return resp.StatusCode
}

// A deafBroadcaster hides the session invalidations from its subscribers,
// as a replica whose pub/sub connection was down would miss them.
type deafBroadcaster struct{ mcpserver.Broadcaster }

func (d deafBroadcaster) Subscribe(ctx context.Context) (<-chan mcpserver.Broadcast, func(), error) {
	in, stop, err := d.Broadcaster.Subscribe(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make(chan mcpserver.Broadcast, 64)
	go func() {
		for {
			select {
			case b := <-in:
				if b.Session == "" {
					out <- b
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, stop, nil
}

// TestSessionCacheDelete checks that a session deleted on one replica stops
// working on another that has its record cached: at once, through the
// invalidation, without running the request.
func TestSessionCacheDelete(t *testing.T) {
	stores := memstore.New(nil)
	_, urlA := replica(t, stores, nil)
	_, urlB := replica(t, stores, nil)
	const version = mcpserver.Version20251125
	sid := initialize(t, urlA, "", version, `{}`)
	key := rand.Text() // unique across runs (-count)
	if got := callTally(t, urlA, sid, key); got != http.StatusOK {
		t.Fatalf("call on A = %d, want 200", got)
	}
	if resp := do(t, urlB, request{method: http.MethodDelete, version: version, session: sid}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE on B = %d", resp.StatusCode)
	}
	time.Sleep(50 * time.Millisecond) // the invalidation travels
	if got := callTally(t, urlA, sid, key); got != http.StatusNotFound {
		t.Errorf("call on A after DELETE on B = %d, want 404", got)
	}
	if n := tally(key); n != 1 {
		t.Errorf("the tool ran %d times, want once: not for the deleted session", n)
	}
}

// TestSessionCacheMissedInvalidation checks the bounds of the session cache
// on a replica that missed a session's invalidation: a request of the
// deleted session is answered 404 (its stream write checks the session),
// and the record is used for at most 2s after the session was last seen.
func TestSessionCacheMissedInvalidation(t *testing.T) {
	stores := memstore.New(nil)
	deaf := stores
	deaf.Broadcaster = deafBroadcaster{stores.Broadcaster}
	_, urlA := replica(t, deaf, nil)
	_, urlB := replica(t, stores, nil)
	const version = mcpserver.Version20251125
	del := func(sid string) {
		t.Helper()
		if resp := do(t, urlB, request{method: http.MethodDelete, version: version, session: sid}); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE on B = %d", resp.StatusCode)
		}
	}

	t.Run("next request", func(t *testing.T) {
		sid := initialize(t, urlA, "", version, `{}`)
		key := rand.Text() // unique across runs (-count)
		if got := callTally(t, urlA, sid, key); got != http.StatusOK {
			t.Fatalf("call on A = %d, want 200", got)
		}
		del(sid)
		// A runs the request on its cached record, but does not answer it.
		if got := callTally(t, urlA, sid, key); got != http.StatusNotFound {
			t.Errorf("call on A after DELETE on B = %d, want 404", got)
		}
		if got := callTally(t, urlA, sid, key); got != http.StatusNotFound {
			t.Errorf("second call on A after DELETE on B = %d, want 404", got)
		}
		if n := tally(key); n != 2 {
			t.Errorf("the tool ran %d times, want twice: the second call after the DELETE must not run", n)
		}
	})

	t.Run("time bound", func(t *testing.T) {
		sid := initialize(t, urlA, "", version, `{}`)
		key := rand.Text() // unique across runs (-count)
		if got := callTally(t, urlA, sid, key); got != http.StatusOK {
			t.Fatalf("call on A = %d, want 200", got)
		}
		del(sid)
		time.Sleep(2*time.Second + 100*time.Millisecond)
		if got := callTally(t, urlA, sid, key); got != http.StatusNotFound {
			t.Errorf("call on A 2s after DELETE on B = %d, want 404", got)
		}
		if n := tally(key); n != 1 {
			t.Errorf("the tool ran %d times, want once: a record unchecked for 2s is read again", n)
		}
	})
}
