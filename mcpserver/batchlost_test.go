package mcpserver_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
)

// failOnceLog is an event log whose next write of events fails once armed
// (fault injection).
type failOnceLog struct {
	*memstore.Events
	armed atomic.Bool
}

func (l *failOnceLog) WriteStream(ctx context.Context, sid, stream string, w *mcpserver.StreamWrite) (int64, error) {
	if !w.Session && len(w.Events) > 0 && l.armed.CompareAndSwap(true, false) {
		return 0, errors.New("append failed")
	}
	return l.Events.WriteStream(ctx, sid, stream, w)
}

// TestBatchResponseNotLogged: in a batch of two calls, the log refuses the
// first response; the stream is not ended over the loss, so that the
// client, following it, gets a retryable error for both calls (the lapsed
// lease is rescued) instead of an empty, ended stream.
func TestBatchResponseNotLogged(t *testing.T) {
	const ttl = 300 * time.Millisecond
	stores := memstore.New(nil)
	log := &failOnceLog{Events: stores.Events.(*memstore.Events)}
	stores.Events = log
	_, url := replica(t, stores, &mcpserver.Options{LeaseTTL: ttl, StreamDelay: 10 * time.Millisecond, KeepAlive: ttl / 5})
	const version = mcpserver.Version20250326
	sid := initialize(t, url, "", version, `{}`)
	key1, release1 := t.Name()+"/1", make(chan struct{})
	key2, release2 := t.Name()+"/2", make(chan struct{})
	gates.Store(key1, release1)
	gates.Store(key2, release2)
	t.Cleanup(func() { gates.Delete(key1); gates.Delete(key2) })
	time.AfterFunc(200*time.Millisecond, func() {
		log.armed.Store(true)
		close(release1)
		time.AfterFunc(100*time.Millisecond, func() { close(release2) })
	})
	body := "[" + callBody(1, "tools/call", `{"name":"wait","arguments":{"key":"`+key1+`"}}`) + "," +
		callBody(2, "tools/call", `{"name":"wait","arguments":{"key":"`+key2+`"}}`) + "]"
	resp := do(t, url, request{version: version, session: sid, body: body})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	evs := readEvents(t, resp)
	t.Logf("events: %+v", evs)
	msgs := messages(t, evs)
	t.Logf("POST stream: %+v", msgs)
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[string(m.ID)] = true
	}
	if !ids["1"] || !ids["2"] {
		t.Fatalf("POST stream = %+v: a response is missing", msgs)
	}
}

// TestProgressNotLogged: a progress notification the log refuses is
// dropped; the call goes on and its response reaches the client.
func TestProgressNotLogged(t *testing.T) {
	const ttl = 300 * time.Millisecond
	stores := memstore.New(nil)
	log := &failOnceLog{Events: stores.Events.(*memstore.Events)}
	stores.Events = log
	_, url := replica(t, stores, &mcpserver.Options{LeaseTTL: ttl, StreamDelay: time.Nanosecond, KeepAlive: ttl / 5})
	const version = mcpserver.Version20250326
	sid := initialize(t, url, "", version, `{}`)
	log.armed.Store(true)
	resp := do(t, url, request{version: version, session: sid,
		body: callBody(7, "tools/call", `{"name":"steps","_meta":{"progressToken":"p"}}`)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	msgs := messages(t, readEvents(t, resp))
	t.Logf("POST stream: %+v", msgs)
	for _, m := range msgs {
		if string(m.ID) == "7" {
			return
		}
	}
	t.Fatalf("no response to 7 (armed still %v)", log.armed.Load())
}
