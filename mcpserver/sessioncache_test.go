package mcpserver_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
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

// A syncBroadcaster tells when the Handler subscribed to it has dealt with
// each session invalidation: its subscriber's channel is unbuffered, and
// after an invalidation it sends a broadcast nobody cares about, which the
// Handler takes only once done with the invalidation.
type syncBroadcaster struct {
	mcpserver.Broadcaster
	handled chan string // the Session field of each invalidation dealt with
}

func (s syncBroadcaster) Subscribe(ctx context.Context) (<-chan mcpserver.Broadcast, func(), error) {
	in, stop, err := s.Broadcaster.Subscribe(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make(chan mcpserver.Broadcast)
	send := func(b mcpserver.Broadcast) bool {
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		for {
			select {
			case b := <-in:
				if !send(b) {
					return
				}
				if b.Session == "" {
					continue
				}
				if !send(mcpserver.Broadcast{Method: "test/nothing"}) {
					return
				}
				select {
				case s.handled <- b.Session:
				default: // nobody waits for this one
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, stop, nil
}

// awaitHandled waits until the invalidation of session sid was dealt with.
func awaitHandled(t *testing.T, handled <-chan string, sid string) {
	t.Helper()
	sum := sha256.Sum256([]byte(sid))
	want := hex.EncodeToString(sum[:])
	for {
		select {
		case got := <-handled:
			if got == want {
				return
			}
		case <-time.After(timeout):
			t.Fatalf("the invalidation of the session was not handled within %v", timeout)
		}
	}
}

// TestSessionCacheDelete checks that a session deleted on one replica stops
// working on another that has its record cached: at once, through the
// invalidation, without running the request.
func TestSessionCacheDelete(t *testing.T) {
	stores := memstore.New(nil)
	handled := make(chan string, 1)
	storesA := stores
	storesA.Broadcaster = syncBroadcaster{stores.Broadcaster, handled}
	_, urlA := replica(t, storesA, nil)
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
	awaitHandled(t, handled, sid)
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
	clock := &fakeClock{t: time.Now()}
	_, urlA := replica(t, deaf, &mcpserver.Options{Now: clock.Now})
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
		clock.Advance(2*time.Second + 100*time.Millisecond)
		if got := callTally(t, urlA, sid, key); got != http.StatusNotFound {
			t.Errorf("call on A 2s after DELETE on B = %d, want 404", got)
		}
		if n := tally(key); n != 1 {
			t.Errorf("the tool ran %d times, want once: a record unchecked for 2s is read again", n)
		}
	})
}
