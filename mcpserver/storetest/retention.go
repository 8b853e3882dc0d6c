package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
)

// A Timed is stores under a clock that the retention tests move.
type Timed struct {
	mcpserver.Stores
	// Advance moves the stores' clock forward by d: whatever expires
	// within d has expired when it returns.
	Advance func(d time.Duration)
	// Size is what the stores hold for a session: a number of entries
	// (for a shared store, keys; in process, streams, leases and records)
	// and their bytes (for a shared store, as the store accounts them; in
	// process, the logged messages).
	Size func(sessionID string) (entries int, bytes int64)
}

// Retention is the configuration RunRetention asks stores for.
const (
	// RetentionWindow is the resume window of the retention tests.
	RetentionWindow = time.Minute
	// RetentionTTL is the session TTL (and event TTL) of the retention
	// tests.
	RetentionTTL = 30 * time.Minute
)

// The bounds of the growth test: what a call may cost within its window
// beyond its response, and what a session may hold a window after its
// calls beyond what it held after its first.
const (
	callOverhead = 6 << 10
	restSlack    = 8 << 10
)

// RunRetention runs the tests of how long the event log keeps streams and
// how much it holds. newStores must return stores whose session and event
// TTL is RetentionTTL, whose resume window is RetentionWindow and whose cap
// on a session's completed-stream bytes is maxBytes.
func RunRetention(t *testing.T, newStores func(t *testing.T, maxBytes int64) Timed) {
	t.Helper()
	t.Run("CompletedStreamExpires", func(t *testing.T) { testRetentionCompletedStreamExpires(t, newStores) })
	t.Run("OpenStreamsKept", func(t *testing.T) { testRetentionOpenStreamsKept(t, newStores) })
	t.Run("MaxLoggedBytes", func(t *testing.T) { testRetentionMaxLoggedBytes(t, newStores) })
	t.Run("Growth", func(t *testing.T) { testRetentionGrowth(t, newStores) })
	t.Run("SessionGrowth", func(t *testing.T) { testSessionGrowth(t, newStores) })
}

// call logs one legacy tools/call the way a Handler does for a call
// that answers at once: one write that checks the session, takes the
// lease, logs the response and ends the stream.
func logCall(t *testing.T, s Timed, sid, stream string, i int, resp []byte) {
	t.Helper()
	id := json.RawMessage(fmt.Sprint(i))
	w := &mcpserver.StreamWrite{Session: true, Owner: "replica-1", IDs: []json.RawMessage{id}, LeaseTTL: 10 * time.Second, Events: [][]byte{resp}, End: true}
	if _, err := s.Events.WriteStream(ctxFor(t), sid, stream, w); err != nil {
		t.Fatalf("call %d: WriteStream: %v", i, err)
	}
}

// toolResponse returns a tools/call response to request i of about size bytes.
func toolResponse(i, size int) []byte {
	prefix := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"`, i)
	return []byte(prefix + strings.Repeat("x", max(size-len(prefix)-5, 0)) + `"}]}}`)
}

// newSession creates a session and returns its id.
func newSession(t *testing.T, s Timed) string {
	t.Helper()
	sid := newID()
	if err := s.Sessions.Create(ctxFor(t), session(sid)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return sid
}

func testRetentionCompletedStreamExpires(t *testing.T, newStores func(t *testing.T, maxBytes int64) Timed) {
	s := newStores(t, 1<<20)
	ctx, sid, stream := ctxFor(t), newSession(t, s), newID()
	logCall(t, s, sid, stream, 1, toolResponse(1, 200))
	// Reading within the window works, and does not extend it.
	s.Advance(RetentionWindow - 5*time.Second)
	events, ended, err := s.Events.Read(ctx, sid, stream, 0, 0)
	if err != nil || !ended || len(events) != 1 {
		t.Fatalf("Read within the window = %d events, ended %v, %v; want 1, true, nil", len(events), ended, err)
	}
	s.Advance(10 * time.Second)
	// After the window the stream is unknown: at once, even with a wait.
	start := time.Now()
	if _, _, err := s.Events.Read(ctx, sid, stream, 0, time.Minute); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Read after the window error = %v, want ErrNotFound", err)
	}
	if d := time.Since(start); d > timeout {
		t.Errorf("Read after the window took %v", d)
	}
	if _, _, _, err := s.Leases.LeaseHolder(ctx, sid, stream); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("LeaseHolder after the window error = %v, want ErrNotFound", err)
	}
	// The session lives on.
	if _, err := s.Sessions.Get(ctx, sid); err != nil {
		t.Errorf("Get session after the window: %v", err)
	}
}

func testRetentionOpenStreamsKept(t *testing.T, newStores func(t *testing.T, maxBytes int64) Timed) {
	s := newStores(t, 1<<20)
	ctx, sid := ctxFor(t), newSession(t, s)
	get, running := newID(), newID()
	// A stream that never ends (the GET stream) and a request still
	// running outlive the window.
	if _, err := s.Events.WriteStream(ctx, sid, get, &mcpserver.StreamWrite{Events: [][]byte{[]byte(`{"a":1}`)}}); err != nil {
		t.Fatal(err)
	}
	w := &mcpserver.StreamWrite{Session: true, Owner: "replica-1", IDs: []json.RawMessage{json.RawMessage(`7`)}, LeaseTTL: time.Hour, Events: [][]byte{[]byte(`{"progress":1}`)}}
	if _, err := s.Events.WriteStream(ctx, sid, running, w); err != nil {
		t.Fatal(err)
	}
	s.Advance(3 * RetentionWindow)
	for _, stream := range []string{get, running} {
		if events, ended, err := s.Events.Read(ctx, sid, stream, 0, 0); err != nil || ended || len(events) != 1 {
			t.Errorf("Read of an open stream after the window = %d events, ended %v, %v; want 1, false, nil", len(events), ended, err)
		}
	}
	// Ending the request now keeps it for a window from now.
	if _, err := s.Events.WriteStream(ctx, sid, running, &mcpserver.StreamWrite{Owner: "replica-1", LeaseTTL: time.Hour, Events: [][]byte{toolResponse(7, 100)}, End: true}); err != nil {
		t.Fatal(err)
	}
	s.Advance(RetentionWindow - 5*time.Second)
	if events, ended, err := s.Events.Read(ctx, sid, running, 0, 0); err != nil || !ended || len(events) != 2 {
		t.Errorf("Read within the window of its end = %d events, ended %v, %v; want 2, true, nil", len(events), ended, err)
	}
}

func testRetentionMaxLoggedBytes(t *testing.T, newStores func(t *testing.T, maxBytes int64) Timed) {
	const maxBytes, size, calls = 10 << 10, 1 << 10, 30
	s := newStores(t, maxBytes)
	ctx, sid := ctxFor(t), newSession(t, s)
	streams := make([]string, calls)
	for i := range streams {
		streams[i] = newID()
		logCall(t, s, sid, streams[i], i, toolResponse(i, size))
	}
	// The streams kept are the newest, at most as many as fit under
	// the cap (a store may charge each stream more than its messages).
	var kept []int
	for i, stream := range streams {
		_, _, err := s.Events.Read(ctx, sid, stream, 0, 0)
		switch {
		case err == nil:
			kept = append(kept, i)
		case !errors.Is(err, mcpserver.ErrNotFound):
			t.Fatalf("Read of stream %d: %v", i, err)
		case len(kept) > 0:
			t.Errorf("stream %d of %d forgotten, after %d was kept: want the oldest forgotten first", i, calls, kept[len(kept)-1])
		}
	}
	if len(kept) == 0 || kept[len(kept)-1] != calls-1 {
		t.Errorf("streams kept %v, want the newest (%d) among them", kept, calls-1)
	}
	if len(kept) > maxBytes/size+1 {
		t.Errorf("%d streams of %d bytes kept under a cap of %d bytes, want at most %d", len(kept), size, maxBytes, maxBytes/size+1)
	}
	// A stream larger than the cap is kept while it is the newest.
	big := newID()
	logCall(t, s, sid, big, calls, toolResponse(calls, 2*maxBytes))
	if _, _, err := s.Events.Read(ctx, sid, big, 0, 0); err != nil {
		t.Errorf("Read of the newest stream, larger than the cap: %v", err)
	}
}

func testRetentionGrowth(t *testing.T, newStores func(t *testing.T, maxBytes int64) Timed) {
	// N calls of one session within a window: the session holds at
	// most their logs; a window later, only its GET stream and its
	// last call's, as after its first call.
	const n, size = 500, 300
	s := newStores(t, mcpserver.DefaultMaxLoggedBytes)
	ctx, sid := ctxFor(t), newSession(t, s)
	get := newID()
	if _, err := s.Events.WriteStream(ctx, sid, get, &mcpserver.StreamWrite{Events: [][]byte{[]byte(`{"method":"notifications/tools/list_changed"}`)}}); err != nil {
		t.Fatal(err)
	}
	logCall(t, s, sid, newID(), 0, toolResponse(0, size))
	entries0, bytes0 := s.Size(sid)
	for i := 1; i <= n; i++ {
		logCall(t, s, sid, newID(), i, toolResponse(i, size))
		if i%100 == 0 {
			s.Advance(time.Second)
		}
	}
	entries1, bytes1 := s.Size(sid)
	perCall := float64(bytes1-bytes0) / n
	t.Logf("at rest: %d entries, %d bytes; %d calls within a window: %d entries, %d bytes (%.0f bytes a call of %d bytes)", entries0, bytes0, n, entries1, bytes1, perCall, size)
	// A call costs its response and bookkeeping: Redis allocates 4 KiB
	// for a new STREAM's first node.
	if perCall > size+callOverhead {
		t.Errorf("a call within the window costs %.0f bytes, want at most %d", perCall, size+callOverhead)
	}
	s.Advance(RetentionWindow + time.Second)
	logCall(t, s, sid, newID(), n+1, toolResponse(n+1, size))
	entries2, bytes2 := s.Size(sid)
	t.Logf("a window later: %d entries, %d bytes", entries2, bytes2)
	// The slack is for indexes that keep their larger encoding once
	// grown (a Redis ZSET past 128 members); it does not grow with n.
	if entries2 > entries0 || bytes2 > bytes0+restSlack {
		t.Errorf("a window after %d calls the session holds %d entries, %d bytes; want at most %d entries, %d bytes (as after one call)", n, entries2, bytes2, entries0, bytes0+restSlack)
	}
	if _, _, err := s.Events.Read(ctx, sid, get, 0, 0); err != nil {
		t.Errorf("Read of the GET stream: %v", err)
	}
}
