package mcpserver_test

import (
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
)

// heardDeaf misses the invalidations, as a Redis replica does while its
// pub/sub connection reconnects (or when its 64-broadcast buffer
// overflows), but claims to have heard everything, as redisstore's Heard
// did (HeardBroadcaster, removed) once PINGs were answered again: the
// Handler must not trust such a claim.
type heardDeaf struct{ deafBroadcaster }

func (heardDeaf) Heard() time.Time { return time.Now() }

func TestHeardAfterMissedInvalidation(t *testing.T) {
	stores := memstore.New(nil)
	deaf := stores
	deaf.Broadcaster = heardDeaf{deafBroadcaster{stores.Broadcaster}}
	_, urlA := replica(t, deaf, nil)
	_, urlB := replica(t, stores, nil)
	const version = mcpserver.Version20251125
	sid := initialize(t, urlA, "", version, `{}`)
	key := rand.Text()
	if got := callTally(t, urlA, sid, key); got != http.StatusOK {
		t.Fatalf("call on A = %d", got)
	}
	if resp := do(t, urlB, request{method: http.MethodDelete, version: version, session: sid}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE on B = %d", resp.StatusCode)
	}
	time.Sleep(5 * time.Second)
	// A GET stream of the deleted session, 5s after the DELETE.
	get := do(t, urlA, request{method: http.MethodGet, version: version, session: sid})
	get.Body.Close()
	t.Logf("GET on A 5s after DELETE on B = %d", get.StatusCode)
	if got := callTally(t, urlA, sid, key); got != http.StatusNotFound {
		t.Errorf("call on A = %d, want 404", got)
	}
	if n := tally(key); n != 1 {
		t.Errorf("the tool ran %d times: it ran for a session deleted 5s ago", n)
	}
}
