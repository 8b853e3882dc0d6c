// Package storetest is the contract test suite that every implementation of
// the mcpserver stores must pass: the in-process memstore and any shared
// store (Redis) alike. It tests behaviour a Handler relies on, never an
// implementation's internals.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/remotemcp/remotemcp/mcpserver"
)

// timeout bounds every wait of the suite for something that should happen.
const timeout = 2 * time.Second

// quiet is how long the suite waits to conclude that something did not
// happen. It is short: a store that delivers late would be caught by the
// positive tests' ordering checks instead.
const quiet = 100 * time.Millisecond

// Run runs the contract tests. newStores is called once per subtest and must
// return stores that are ready to use; it should register its own cleanup
// with t. Stores may be shared between calls (a Redis server): every subtest
// uses fresh random session IDs.
func Run(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	t.Helper()
	t.Run("Complete", func(t *testing.T) {
		s := newStores(t)
		if s.Sessions == nil || s.Events == nil || s.Leases == nil || s.Inbox == nil || s.Broadcaster == nil {
			t.Fatalf("newStores returned incomplete Stores: %+v", s)
		}
	})
	t.Run("Sessions", func(t *testing.T) { testSessions(t, newStores) })
	t.Run("Events", func(t *testing.T) { testEvents(t, newStores) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, newStores) })
	t.Run("WriteStream", func(t *testing.T) { testWriteStream(t, newStores) })
	t.Run("Inbox", func(t *testing.T) { testInbox(t, newStores) })
	t.Run("Broadcaster", func(t *testing.T) { testBroadcaster(t, newStores) })
}

// newID returns a random ID, unique across subtests and runs, in the
// alphabet the Handler uses for session and stream IDs.
func newID() string { return rand.Text() }

// ctxFor returns a context for one subtest, bounded so that a store that
// hangs fails the test instead of stalling it.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*timeout)
	t.Cleanup(cancel)
	return ctx
}

// session returns a fully populated record, so that a store that drops a
// field is caught.
func session(id string) *mcpserver.Session {
	return &mcpserver.Session{
		ID:      id,
		Subject: "alice",
		State: mcp.ServerSessionState{
			InitializeParams: &mcp.InitializeParams{
				ProtocolVersion: mcpserver.Version20251125,
				ClientInfo:      &mcp.Implementation{Name: "client", Version: "1.0.0"},
				Capabilities:    &mcp.ClientCapabilities{},
			},
			InitializedParams:         &mcp.InitializedParams{},
			NegotiatedProtocolVersion: mcpserver.Version20251125,
			LogLevel:                  "info",
		},
		Subscriptions: []string{"notes://alice/1", "notes://alice/2"},
		CreatedAt:     time.Date(2026, 7, 28, 12, 30, 45, 0, time.UTC),
	}
}

func testSessions(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	t.Run("CreateGet", func(t *testing.T) { testSessionsCreateGet(t, newStores) })
	t.Run("GetMissing", func(t *testing.T) { testSessionsGetMissing(t, newStores) })
	t.Run("SessionLimit", func(t *testing.T) { testSessionsSessionLimit(t, newStores) })
	t.Run("CreateDuplicate", func(t *testing.T) { testSessionsCreateDuplicate(t, newStores) })
	t.Run("Update", func(t *testing.T) { testSessionsUpdate(t, newStores) })
	t.Run("UpdateMissing", func(t *testing.T) { testSessionsUpdateMissing(t, newStores) })
	t.Run("UpdateIsAtomic", func(t *testing.T) { testSessionsUpdateIsAtomic(t, newStores) })
	t.Run("Delete", func(t *testing.T) { testSessionsDelete(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testSessionsNoAliasing(t, newStores) })
}

func testSessionsCreateGet(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, s := ctxFor(t), newStores(t).Sessions
	want := session(newID())
	if err := s.Create(ctx, session(want.ID)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := s.Get(ctx, want.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get after Create (-want +got):\n%s", diff)
	}
}

func testSessionsGetMissing(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, s := ctxFor(t), newStores(t).Sessions
	if _, err := s.Get(ctx, newID()); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
	}
}

func testSessionsSessionLimit(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, s := ctxFor(t), newStores(t).Sessions
	subject := "limited-" + newID() // the stores may be shared between subtests
	create := func(subject string) (string, error) {
		sess := session(newID())
		sess.Subject = subject
		return sess.ID, s.Create(ctx, sess)
	}
	const free = 4
	var ids []string
	for i := range mcpserver.DefaultMaxSessionsPerSubject - free {
		id, err := create(subject)
		if err != nil {
			t.Fatalf("Create #%d = %v", i, err)
		}
		ids = append(ids, id)
	}
	// Racing Creates take exactly the free places.
	var wg sync.WaitGroup
	errs := make([]error, 4*free)
	for i := range errs {
		wg.Go(func() { _, errs[i] = create(subject) })
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, mcpserver.ErrSessionLimit):
			t.Errorf("racing Create #%d = %v, want nil or ErrSessionLimit", i, err)
		}
	}
	if won != free {
		t.Errorf("%d of %d racing Creates succeeded with %d places free", won, len(errs), free)
	}
	if _, err := create(subject); !errors.Is(err, mcpserver.ErrSessionLimit) {
		t.Errorf("Create past the limit = %v, want ErrSessionLimit", err)
	}
	if _, err := create("other-" + newID()); err != nil {
		t.Errorf("another subject's Create = %v", err)
	}
	if err := s.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := create(subject); err != nil {
		t.Errorf("Create after a Delete freed a place = %v", err)
	}
	if _, err := create(subject); !errors.Is(err, mcpserver.ErrSessionLimit) {
		t.Errorf("Create once the freed place is taken = %v, want ErrSessionLimit", err)
	}
}

func testSessionsCreateDuplicate(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, s := ctxFor(t), newStores(t).Sessions
	want := session(newID())
	if err := s.Create(ctx, session(want.ID)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	dup := session(want.ID)
	dup.Subject = "mallory"
	if err := s.Create(ctx, dup); err == nil {
		t.Errorf("second Create of %s succeeded, want an error", want.ID)
	}
	got, err := s.Get(ctx, want.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a failed Create changed the record (-want +got):\n%s", diff)
	}
}

func testSessionsUpdate(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, s := ctxFor(t), newStores(t).Sessions
	id := newID()
	if err := s.Create(ctx, session(id)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	calls, seen := 0, ""
	err := s.Update(ctx, id, func(sess *mcpserver.Session) {
		calls++
		seen = cmp.Diff(session(id), sess)
		sess.State.LogLevel = "debug"
		sess.Subscriptions = append(sess.Subscriptions, "notes://alice/3")
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if calls == 0 {
		t.Fatalf("Update did not call fn")
	}
	if seen != "" {
		t.Errorf("Update passed fn the wrong record (-want +got):\n%s", seen)
	}
	want := session(id)
	want.State.LogLevel = "debug"
	want.Subscriptions = append(want.Subscriptions, "notes://alice/3")
	got, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get after Update (-want +got):\n%s", diff)
	}
}

func testSessionsUpdateMissing(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, s := ctxFor(t), newStores(t).Sessions
	called := false
	err := s.Update(ctx, newID(), func(*mcpserver.Session) { called = true })
	if !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Update(missing) error = %v, want ErrNotFound", err)
	}
	if called {
		t.Errorf("Update(missing) called fn")
	}
}

func testSessionsUpdateIsAtomic(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, s := ctxFor(t), newStores(t).Sessions
	id := newID()
	start := session(id)
	start.Subscriptions = nil
	if err := s.Create(ctx, start); err != nil {
		t.Fatalf("Create: %v", err)
	}
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			uri := fmt.Sprintf("notes://alice/%d", i)
			err := s.Update(ctx, id, func(sess *mcpserver.Session) { sess.Subscriptions = append(sess.Subscriptions, uri) })
			if err != nil {
				t.Errorf("Update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("notes://alice/%d", i))
	}
	slices.Sort(want)
	slices.Sort(got.Subscriptions)
	if diff := cmp.Diff(want, got.Subscriptions); diff != "" {
		t.Errorf("concurrent Updates lost writes (-want +got):\n%s", diff)
	}
}

func testSessionsDelete(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, s := ctxFor(t), newStores(t).Sessions
	id, other := newID(), newID()
	for _, id := range []string{id, other} {
		if err := s.Create(ctx, session(id)); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, id); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
	if err := s.Update(ctx, id, func(*mcpserver.Session) {}); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Update after Delete error = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, other); err != nil {
		t.Errorf("Delete(%s) removed another session: Get(other) = %v", id, err)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Errorf("Delete of a deleted session = %v, want nil", err)
	}
	if err := s.Delete(ctx, newID()); err != nil {
		t.Errorf("Delete of a missing session = %v, want nil", err)
	}
	if err := s.Create(ctx, session(id)); err != nil {
		t.Errorf("Create after Delete: %v", err)
	}
}

func testSessionsNoAliasing(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, s := ctxFor(t), newStores(t).Sessions
	id := newID()
	want := session(id)
	created := session(id)
	if err := s.Create(ctx, created); err != nil {
		t.Fatalf("Create: %v", err)
	}
	mutate := func(sess *mcpserver.Session) {
		sess.Subject = "mallory"
		sess.Subscriptions[0] = "notes://mallory/1"
		sess.State.InitializeParams.ClientInfo.Name = "mallory"
		sess.State.LogLevel = "emergency"
	}
	mutate(created) // the caller's record after Create

	got, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	mutate(got) // a record returned by Get

	var kept *mcpserver.Session
	if err := s.Update(ctx, id, func(sess *mcpserver.Session) { kept = sess }); err != nil {
		t.Fatalf("Update: %v", err)
	}
	mutate(kept) // the record fn saw, after Update returned

	got, err = s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the stored record shares memory with a caller (-want +got):\n%s", diff)
	}
}

func testEvents(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	t.Run("OpenEmpty", func(t *testing.T) { testEventsOpenEmpty(t, newStores) })
	t.Run("AppendRead", func(t *testing.T) { testEventsAppendRead(t, newStores) })
	t.Run("OpenKeepsEvents", func(t *testing.T) { testEventsOpenKeepsEvents(t, newStores) })
	t.Run("StreamsAreIndependent", func(t *testing.T) { testEventsStreamsAreIndependent(t, newStores) })
	t.Run("ReadUnknown", func(t *testing.T) { testEventsReadUnknown(t, newStores) })
	t.Run("ReadWaitsForAppend", func(t *testing.T) { testEventsReadWaitsForAppend(t, newStores) })
	t.Run("ReadWaitsForEnd", func(t *testing.T) { testEventsReadWaitsForEnd(t, newStores) })
	t.Run("ReadWaitTimesOut", func(t *testing.T) { testEventsReadWaitTimesOut(t, newStores) })
	t.Run("ReadStopsOnCancel", func(t *testing.T) { testEventsReadStopsOnCancel(t, newStores) })
	t.Run("End", func(t *testing.T) { testEventsEnd(t, newStores) })
	t.Run("DeleteSession", func(t *testing.T) { testEventsDeleteSession(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testEventsNoAliasing(t, newStores) })
}

// open opens the stream with an empty write.
func open(t *testing.T, ctx context.Context, l mcpserver.EventLog, sid, stream string) {
	t.Helper()
	if _, err := l.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{}); err != nil {
		t.Fatalf("Open: %v", err)
	}
}

// appendAll opens the stream, appends each message and checks the
// sequence numbers.
func appendAll(t *testing.T, ctx context.Context, l mcpserver.EventLog, sid, stream string, first int64, msgs ...string) []mcpserver.Event {
	t.Helper()
	open(t, ctx, l, sid, stream)
	var out []mcpserver.Event
	for i, m := range msgs {
		seq, err := l.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Events: [][]byte{[]byte(m)}})
		if err != nil {
			t.Fatalf("Append(%q): %v", m, err)
		}
		if want := first + int64(i); seq != want {
			t.Errorf("Append(%q) = seq %d, want %d", m, seq, want)
		}
		out = append(out, mcpserver.Event{Seq: seq, Data: []byte(m)})
	}
	return out
}

// readResult is what a readAsync's Read returned.
type readResult struct {
	events []mcpserver.Event
	ended  bool
	err    error
}

// readAsync starts a Read in the background.
func readAsync(ctx context.Context, l mcpserver.EventLog, sid, stream string, after int64, wait time.Duration) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		events, ended, err := l.Read(ctx, sid, stream, after, wait)
		ch <- readResult{events, ended, err}
	}()
	return ch
}

// await returns the result of a readAsync, failing the test if it does
// not come within timeout.
func await(t *testing.T, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(timeout):
		t.Fatalf("Read did not return within %v", timeout)
		return readResult{}
	}
}

func testEventsOpenEmpty(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, stream := newID(), newID()
	open(t, ctx, l, sid, stream)
	events, ended, err := l.Read(ctx, sid, stream, 0, 0)
	if err != nil || ended || len(events) != 0 {
		t.Errorf("Read of a new stream = %v, %v, %v; want no events, not ended, nil", events, ended, err)
	}
}

func testEventsAppendRead(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, stream := newID(), newID()
	open(t, ctx, l, sid, stream)
	all := appendAll(t, ctx, l, sid, stream, 1, `{"n":1}`, `{"n":2}`, `{"n":3}`)
	for _, tt := range []struct {
		name  string
		after int64
		want  []mcpserver.Event
	}{
		{"from start", 0, all},
		{"after first", 1, all[1:]},
		{"after second", 2, all[2:]},
		{"after last", 3, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ended, err := l.Read(ctx, sid, stream, tt.after, 0)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if ended {
				t.Errorf("Read of an open stream: ended = true")
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(eventsEqual)); diff != "" {
				t.Errorf("Read(after %d) (-want +got):\n%s", tt.after, diff)
			}
		})
	}
}

func testEventsOpenKeepsEvents(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, stream := newID(), newID()
	open(t, ctx, l, sid, stream)
	want := appendAll(t, ctx, l, sid, stream, 1, `"a"`, `"b"`)
	if _, err := l.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{}); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	got, _, err := l.Read(ctx, sid, stream, 0, 0)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(eventsEqual)); diff != "" {
		t.Errorf("Read after a second Open (-want +got):\n%s", diff)
	}
	appendAll(t, ctx, l, sid, stream, 3, `"c"`)
}

func testEventsStreamsAreIndependent(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, other := newID(), newID()
	s1, s2 := newID(), newID()
	want1 := appendAll(t, ctx, l, sid, s1, 1, `"s1-a"`, `"s1-b"`)
	want2 := appendAll(t, ctx, l, sid, s2, 1, `"s2-a"`)
	// The same stream ID in another session is another stream.
	wantOther := appendAll(t, ctx, l, other, s1, 1, `"other-a"`)
	for _, tt := range []struct {
		name        string
		sid, stream string
		want        []mcpserver.Event
	}{
		{"first", sid, s1, want1},
		{"second", sid, s2, want2},
		{"other session", other, s1, wantOther},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := l.Read(ctx, tt.sid, tt.stream, 0, 0)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(eventsEqual)); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
}

func testEventsReadUnknown(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, stream := newID(), newID()
	open(t, ctx, l, sid, stream)
	for _, tt := range []struct {
		name        string
		sid, stream string
		wait        time.Duration
	}{
		{"unknown stream", sid, newID(), 0},
		{"unknown session", newID(), stream, 0},
		// ErrNotFound is immediate: there is nothing to wait for.
		{"unknown stream with wait", sid, newID(), time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := await(t, readAsync(ctx, l, tt.sid, tt.stream, 0, tt.wait))
			if !errors.Is(r.err, mcpserver.ErrNotFound) {
				t.Errorf("Read error = %v, want ErrNotFound", r.err)
			}
		})
	}
}

func testEventsReadWaitsForAppend(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, stream := newID(), newID()
	appendAll(t, ctx, l, sid, stream, 1, `"a"`)
	ch := readAsync(ctx, l, sid, stream, 1, time.Minute)
	time.Sleep(20 * time.Millisecond) // let Read start waiting; the result is the same if not
	want := appendAll(t, ctx, l, sid, stream, 2, `"b"`)
	r := await(t, ch)
	if r.err != nil {
		t.Fatalf("Read: %v", r.err)
	}
	if diff := cmp.Diff(want, r.events, cmp.Comparer(eventsEqual)); diff != "" {
		t.Errorf("Read woken by Append (-want +got):\n%s", diff)
	}
}

func testEventsReadWaitsForEnd(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, stream := newID(), newID()
	appendAll(t, ctx, l, sid, stream, 1, `"a"`)
	ch := readAsync(ctx, l, sid, stream, 1, time.Minute)
	time.Sleep(20 * time.Millisecond)
	if _, err := l.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{End: true}); err != nil {
		t.Fatalf("End: %v", err)
	}
	r := await(t, ch)
	if r.err != nil || !r.ended || len(r.events) != 0 {
		t.Errorf("Read woken by End = %v, %v, %v; want no events, ended, nil", r.events, r.ended, r.err)
	}
}

func testEventsReadWaitTimesOut(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, stream := newID(), newID()
	appendAll(t, ctx, l, sid, stream, 1, `"a"`)
	start := time.Now()
	r := await(t, readAsync(ctx, l, sid, stream, 1, 50*time.Millisecond))
	if r.err != nil || r.ended || len(r.events) != 0 {
		t.Errorf("Read with nothing new = %v, %v, %v; want no events, not ended, nil", r.events, r.ended, r.err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("Read returned after %v, before its wait of 50ms", d)
	}
}

func testEventsReadStopsOnCancel(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, stream := newID(), newID()
	appendAll(t, ctx, l, sid, stream, 1, `"a"`)
	rctx, cancel := context.WithCancel(ctx)
	ch := readAsync(rctx, l, sid, stream, 1, time.Minute)
	time.Sleep(20 * time.Millisecond)
	cancel()
	if r := await(t, ch); len(r.events) != 0 {
		t.Errorf("cancelled Read returned events %v", r.events)
	}
}

func testEventsEnd(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, stream := newID(), newID()
	all := appendAll(t, ctx, l, sid, stream, 1, `"a"`, `"b"`)
	if _, err := l.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{End: true}); err != nil {
		t.Fatalf("End: %v", err)
	}
	if _, err := l.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{End: true}); err != nil {
		t.Errorf("second End: %v", err)
	}
	for _, tt := range []struct {
		name  string
		after int64
		want  []mcpserver.Event
	}{
		{"from start", 0, all},
		{"after first", 1, all[1:]},
		{"after last", 2, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := await(t, readAsync(ctx, l, sid, stream, tt.after, time.Minute))
			if r.err != nil {
				t.Fatalf("Read: %v", r.err)
			}
			if !r.ended {
				t.Errorf("Read of an ended stream: ended = false")
			}
			if diff := cmp.Diff(tt.want, r.events, cmp.Comparer(eventsEqual)); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
	if seq, err := l.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Events: [][]byte{[]byte(`"late"`)}}); err == nil {
		t.Errorf("Append after End = seq %d, nil; want an error", seq)
	}
	got, _, err := l.Read(ctx, sid, stream, 0, 0)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if diff := cmp.Diff(all, got, cmp.Comparer(eventsEqual)); diff != "" {
		t.Errorf("a failed Append changed the stream (-want +got):\n%s", diff)
	}
}

func testEventsDeleteSession(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), newStores(t).Events
	sid, other := newID(), newID()
	s1, s2 := newID(), newID()
	appendAll(t, ctx, l, sid, s1, 1, `"a"`)
	open(t, ctx, l, sid, s2)
	keep := appendAll(t, ctx, l, other, s1, 1, `"kept"`)
	// A Read waiting on the session returns no events.
	waiting := readAsync(ctx, l, sid, s2, 0, timeout/4)
	time.Sleep(20 * time.Millisecond)
	if err := l.DeleteSession(ctx, sid); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if r := await(t, waiting); len(r.events) != 0 {
		t.Errorf("Read waiting across DeleteSession returned events %v", r.events)
	}
	for _, stream := range []string{s1, s2} {
		if _, _, err := l.Read(ctx, sid, stream, 0, 0); !errors.Is(err, mcpserver.ErrNotFound) {
			t.Errorf("Read after DeleteSession error = %v, want ErrNotFound", err)
		}
	}
	got, _, err := l.Read(ctx, other, s1, 0, 0)
	if err != nil {
		t.Fatalf("Read(other session): %v", err)
	}
	if diff := cmp.Diff(keep, got, cmp.Comparer(eventsEqual)); diff != "" {
		t.Errorf("DeleteSession changed another session (-want +got):\n%s", diff)
	}
	if err := l.DeleteSession(ctx, newID()); err != nil {
		t.Errorf("DeleteSession of an unknown session = %v, want nil", err)
	}
}

func testEventsNoAliasing(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	// readOne returns the data of the stream's only event.
	readOne := func(t *testing.T, ctx context.Context, l mcpserver.EventLog, sid, stream string) []byte {
		t.Helper()
		got, _, err := l.Read(ctx, sid, stream, 0, 0)
		if err != nil || len(got) != 1 {
			t.Fatalf("Read = %v, %v; want one event", got, err)
		}
		return got[0].Data
	}
	t.Run("Append", func(t *testing.T) {
		ctx, l := ctxFor(t), newStores(t).Events
		sid, stream := newID(), newID()
		open(t, ctx, l, sid, stream)
		data := []byte(`"original"`)
		if _, err := l.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Events: [][]byte{data}}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		copy(data, `"mutated!"`) // the caller reuses its buffer
		if diff := cmp.Diff(`"original"`, string(readOne(t, ctx, l, sid, stream))); diff != "" {
			t.Errorf("the stored event shares memory with Append's caller (-want +got):\n%s", diff)
		}
	})
	t.Run("Read", func(t *testing.T) {
		ctx, l := ctxFor(t), newStores(t).Events
		sid, stream := newID(), newID()
		open(t, ctx, l, sid, stream)
		if _, err := l.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Events: [][]byte{[]byte(`"original"`)}}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		copy(readOne(t, ctx, l, sid, stream), `"mutated!"`) // a reader edits what it got
		if diff := cmp.Diff(`"original"`, string(readOne(t, ctx, l, sid, stream))); diff != "" {
			t.Errorf("the stored event shares memory with Read's caller (-want +got):\n%s", diff)
		}
	})
}

// leaseTTL is the lease of the LeaseStore tests: long enough that a few
// store operations fit in it, short enough to wait for its lapse.
const leaseTTL = 400 * time.Millisecond

// lapse is how long the LeaseStore tests wait for a lease to lapse.
const lapse = leaseTTL + 200*time.Millisecond

// testLeases tests the LeaseStore, with the store's own clock.
func testLeases(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	t.Run("Take", func(t *testing.T) { testLeasesTake(t, newStores) })
	t.Run("Missing", func(t *testing.T) { testLeasesMissing(t, newStores) })
	t.Run("RefusedWhileLive", func(t *testing.T) { testLeasesRefusedWhileLive(t, newStores) })
	t.Run("RenewByOwner", func(t *testing.T) { testLeasesRenewByOwner(t, newStores) })
	t.Run("TakeoverAfterLapse", func(t *testing.T) { testLeasesTakeoverAfterLapse(t, newStores) })
	t.Run("OneTaker", func(t *testing.T) { testLeasesOneTaker(t, newStores) })
	t.Run("StreamsAreIndependent", func(t *testing.T) { testLeasesStreamsAreIndependent(t, newStores) })
	t.Run("DeleteSession", func(t *testing.T) { testLeasesDeleteSession(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testLeasesNoAliasing(t, newStores) })
}

// leaser returns a fresh LeaseStore.
func leaser(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) mcpserver.LeaseStore {
	t.Helper()
	return newStores(t).Leases
}

// leaseIDs are the request ids the LeaseStore tests lease.
var leaseIDs = []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`"two"`)}

// leaseWant asks for the lease and checks whether it was granted.
func leaseWant(t *testing.T, ctx context.Context, l mcpserver.LeaseStore, sid, stream, owner string, ids []json.RawMessage, want bool) {
	t.Helper()
	got, err := l.Lease(ctx, sid, stream, owner, ids, leaseTTL)
	if err != nil {
		t.Fatalf("Lease(%s): %v", owner, err)
	}
	if got != want {
		t.Fatalf("Lease(%s) = %v, want %v", owner, got, want)
	}
}

// holderWant checks the lease's holder, its ids and whether it is live.
func holderWant(t *testing.T, ctx context.Context, l mcpserver.LeaseStore, sid, stream, wantOwner string, wantIDs []json.RawMessage, wantLive bool) {
	t.Helper()
	owner, ids, live, err := l.LeaseHolder(ctx, sid, stream)
	if err != nil {
		t.Fatalf("LeaseHolder: %v", err)
	}
	if owner != wantOwner || live != wantLive {
		t.Errorf("LeaseHolder = owner %q, live %v; want %q, %v", owner, live, wantOwner, wantLive)
	}
	if diff := cmp.Diff(idStrings(wantIDs), idStrings(ids)); diff != "" {
		t.Errorf("LeaseHolder ids (-want +got):\n%s", diff)
	}
}

func testLeasesTake(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), leaser(t, newStores)
	sid, stream := newID(), newID()
	leaseWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
	holderWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
}

func testLeasesMissing(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), leaser(t, newStores)
	sid, stream := newID(), newID()
	if _, _, _, err := l.LeaseHolder(ctx, sid, stream); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("LeaseHolder(never leased) error = %v, want ErrNotFound", err)
	}
	leaseWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
	if _, _, _, err := l.LeaseHolder(ctx, sid, newID()); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("LeaseHolder(another stream) error = %v, want ErrNotFound", err)
	}
	if _, _, _, err := l.LeaseHolder(ctx, newID(), stream); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("LeaseHolder(another session) error = %v, want ErrNotFound", err)
	}
}

func testLeasesRefusedWhileLive(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), leaser(t, newStores)
	sid, stream := newID(), newID()
	leaseWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
	leaseWant(t, ctx, l, sid, stream, "b", []json.RawMessage{json.RawMessage(`3`)}, false)
	holderWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
}

func testLeasesRenewByOwner(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), leaser(t, newStores)
	sid, stream := newID(), newID()
	leaseWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
	// Renewed before it lapses, the lease lives past its first term.
	for range 3 {
		time.Sleep(leaseTTL / 2)
		leaseWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
	}
	leaseWant(t, ctx, l, sid, stream, "b", leaseIDs, false)
	holderWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
}

func testLeasesTakeoverAfterLapse(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), leaser(t, newStores)
	sid, stream := newID(), newID()
	leaseWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
	time.Sleep(lapse)
	// A lapsed lease still tells its ids, so that a taker learns them.
	holderWant(t, ctx, l, sid, stream, "a", leaseIDs, false)
	leaseWant(t, ctx, l, sid, stream, "b", leaseIDs, true)
	holderWant(t, ctx, l, sid, stream, "b", leaseIDs, true)
	leaseWant(t, ctx, l, sid, stream, "c", leaseIDs, false)
	leaseWant(t, ctx, l, sid, stream, "a", leaseIDs, false) // the old owner lost it
}

func testLeasesOneTaker(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), leaser(t, newStores)
	sid, stream := newID(), newID()
	leaseWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
	time.Sleep(lapse)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []string
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprint("taker", i)
			ok, err := l.Lease(ctx, sid, stream, owner, leaseIDs, leaseTTL)
			if err != nil {
				t.Errorf("Lease: %v", err)
			}
			if ok {
				mu.Lock()
				won = append(won, owner)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Errorf("%d of 8 concurrent takers won the lapsed lease (%v), want 1", len(won), won)
	}
}

func testLeasesStreamsAreIndependent(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), leaser(t, newStores)
	sid, s1, s2 := newID(), newID(), newID()
	leaseWant(t, ctx, l, sid, s1, "a", leaseIDs, true)
	leaseWant(t, ctx, l, sid, s2, "b", leaseIDs[:1], true)
	leaseWant(t, ctx, l, newID(), s1, "c", leaseIDs, true)
	holderWant(t, ctx, l, sid, s1, "a", leaseIDs, true)
	holderWant(t, ctx, l, sid, s2, "b", leaseIDs[:1], true)
}

func testLeasesDeleteSession(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, s := ctxFor(t), newStores(t)
	l := s.Leases
	sid, stream := newID(), newID()
	if _, err := s.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{}); err != nil {
		t.Fatalf("Open: %v", err)
	}
	leaseWant(t, ctx, l, sid, stream, "a", leaseIDs, true)
	if err := s.Events.DeleteSession(ctx, sid); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, _, _, err := l.LeaseHolder(ctx, sid, stream); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("LeaseHolder after DeleteSession error = %v, want ErrNotFound", err)
	}
}

func testLeasesNoAliasing(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, l := ctxFor(t), leaser(t, newStores)
	sid, stream := newID(), newID()
	mine := []json.RawMessage{json.RawMessage(`11`)}
	leaseWant(t, ctx, l, sid, stream, "a", mine, true)
	copy(mine[0], `99`) // the caller reuses its buffer
	_, got, _, err := l.LeaseHolder(ctx, sid, stream)
	if err != nil || len(got) != 1 {
		t.Fatalf("LeaseHolder = %v, %v; want one id", got, err)
	}
	copy(got[0], `77`) // a reader edits what it got
	holderWant(t, ctx, l, sid, stream, "a", []json.RawMessage{json.RawMessage(`11`)}, true)
}

// testWriteStream tests EventLog.WriteStream's combined writes.
func testWriteStream(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	t.Run("WholeStream", func(t *testing.T) { testWriteStreamWholeStream(t, newStores) })
	t.Run("OpenOnly", func(t *testing.T) { testWriteStreamOpenOnly(t, newStores) })
	t.Run("Successive", func(t *testing.T) { testWriteStreamSuccessive(t, newStores) })
	t.Run("EndedStream", func(t *testing.T) { testWriteStreamEndedStream(t, newStores) })
	t.Run("Session", func(t *testing.T) { testWriteStreamSession(t, newStores) })
	t.Run("Lease", func(t *testing.T) { testWriteStreamLease(t, newStores) })
	t.Run("WakesReads", func(t *testing.T) { testWriteStreamWakesReads(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testWriteStreamNoAliasing(t, newStores) })
}

// writer returns fresh stores and their event log.
func writer(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) (mcpserver.Stores, mcpserver.EventLog) {
	t.Helper()
	s := newStores(t)
	return s, s.Events
}

// writeWant writes sw and checks the sequence number of the last event.
func writeWant(t *testing.T, ctx context.Context, w mcpserver.EventLog, sid, stream string, sw *mcpserver.StreamWrite, want int64) {
	t.Helper()
	last, err := w.WriteStream(ctx, sid, stream, sw)
	if err != nil {
		t.Fatalf("WriteStream: %v", err)
	}
	if last != want {
		t.Errorf("WriteStream = last %d, want %d", last, want)
	}
}

// readWant reads the whole stream and checks its events and whether it ended.
func readWant(t *testing.T, ctx context.Context, l mcpserver.EventLog, sid, stream string, want []mcpserver.Event, wantEnded bool) {
	t.Helper()
	events, ended, err := l.Read(ctx, sid, stream, 0, 0)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !eventsEqual(want, events) || ended != wantEnded {
		t.Errorf("Read = %v, ended %v; want %v, ended %v", events, ended, want, wantEnded)
	}
}

// payloads returns the messages as event payloads.
func payloads(ms ...string) [][]byte {
	var out [][]byte
	for _, m := range ms {
		out = append(out, []byte(m))
	}
	return out
}

// event returns the event of sequence number seq and data m.
func event(seq int64, m string) mcpserver.Event { return mcpserver.Event{Seq: seq, Data: []byte(m)} }

func testWriteStreamWholeStream(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx := ctxFor(t)
	s, w := writer(t, newStores)
	sid, stream := newID(), newID()
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Events: payloads(`"a"`, `"b"`), End: true}, 2)
	readWant(t, ctx, s.Events, sid, stream, []mcpserver.Event{event(1, `"a"`), event(2, `"b"`)}, true)
}

func testWriteStreamOpenOnly(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx := ctxFor(t)
	s, w := writer(t, newStores)
	sid, stream := newID(), newID()
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{}, 0)
	readWant(t, ctx, s.Events, sid, stream, nil, false)
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{End: true}, 0)
	readWant(t, ctx, s.Events, sid, stream, nil, true)
}

func testWriteStreamSuccessive(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx := ctxFor(t)
	s, w := writer(t, newStores)
	sid, stream := newID(), newID()
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Events: payloads(`1`)}, 1)
	if seq, err := s.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Events: [][]byte{[]byte(`2`)}}); err != nil || seq != 2 {
		t.Fatalf("Append = %d, %v; want 2", seq, err)
	}
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Events: payloads(`3`, `4`)}, 4)
	readWant(t, ctx, s.Events, sid, stream, []mcpserver.Event{event(1, `1`), event(2, `2`), event(3, `3`), event(4, `4`)}, false)
}

func testWriteStreamEndedStream(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx := ctxFor(t)
	s, w := writer(t, newStores)
	sid, stream := newID(), newID()
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Events: payloads(`1`), End: true}, 1)
	if _, err := w.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Events: payloads(`2`)}); err == nil {
		t.Errorf("WriteStream of events to an ended stream succeeded, want an error")
	}
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{End: true}, 1)
	readWant(t, ctx, s.Events, sid, stream, []mcpserver.Event{event(1, `1`)}, true)
}

func testWriteStreamSession(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx := ctxFor(t)
	s, w := writer(t, newStores)
	sid, stream := newID(), newID()
	_, err := w.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Session: true, Events: payloads(`1`), End: true})
	if !errors.Is(err, mcpserver.ErrNotFound) {
		t.Fatalf("WriteStream for a missing session error = %v, want ErrNotFound", err)
	}
	if _, _, err := s.Events.Read(ctx, sid, stream, 0, 0); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Read after a refused WriteStream error = %v, want ErrNotFound: nothing written", err)
	}
	if err := s.Sessions.Create(ctx, session(sid)); err != nil {
		t.Fatal(err)
	}
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Session: true, Events: payloads(`1`), End: true}, 1)
	readWant(t, ctx, s.Events, sid, stream, []mcpserver.Event{event(1, `1`)}, true)
	if err := s.Sessions.Delete(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteStream(ctx, sid, newID(), &mcpserver.StreamWrite{Session: true}); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("WriteStream after Delete error = %v, want ErrNotFound", err)
	}
}

func testWriteStreamLease(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx := ctxFor(t)
	s, w := writer(t, newStores)
	l := s.Leases
	sid, stream := newID(), newID()
	ids := []json.RawMessage{json.RawMessage(`7`)}
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Owner: "a", IDs: ids, LeaseTTL: leaseTTL, Events: payloads(`1`)}, 1)
	owner, got, live, err := l.LeaseHolder(ctx, sid, stream)
	if err != nil || owner != "a" || !live || !slices.Equal(idStrings(got), idStrings(ids)) {
		t.Errorf("LeaseHolder = %q, %v, live %v, %v; want a's live lease of [7]", owner, idStrings(got), live, err)
	}
	if _, err := w.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Owner: "b", LeaseTTL: leaseTTL, Events: payloads(`2`)}); !errors.Is(err, mcpserver.ErrLeased) {
		t.Errorf("WriteStream by another owner error = %v, want ErrLeased", err)
	}
	readWant(t, ctx, s.Events, sid, stream, []mcpserver.Event{event(1, `1`)}, false)
	if ok, err := l.Lease(ctx, sid, stream, "b", nil, leaseTTL); err != nil || ok {
		t.Errorf("Lease by b = %v, %v; want refused", ok, err)
	}
	// The owner renews; without an owner, the lease is not checked.
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Owner: "a", IDs: ids, LeaseTTL: leaseTTL, Events: payloads(`2`)}, 2)
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Events: payloads(`3`)}, 3)
	time.Sleep(lapse)
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Owner: "b", LeaseTTL: leaseTTL, End: true}, 3)
	if owner, _, live, err := l.LeaseHolder(ctx, sid, stream); err != nil || owner != "b" || !live {
		t.Errorf("LeaseHolder after the lapse = %q, live %v, %v; want b's live lease", owner, live, err)
	}
	if err := s.Events.DeleteSession(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := l.LeaseHolder(ctx, sid, stream); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("LeaseHolder after DeleteSession error = %v, want ErrNotFound", err)
	}
}

func testWriteStreamWakesReads(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx := ctxFor(t)
	s, w := writer(t, newStores)
	sid, stream := newID(), newID()
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{}, 0)
	done := make(chan []mcpserver.Event, 1)
	go func() {
		events, _, _ := s.Events.Read(ctx, sid, stream, 0, 10*timeout)
		done <- events
	}()
	time.Sleep(quiet)
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Events: payloads(`1`), End: true}, 1)
	select {
	case events := <-done:
		if !eventsEqual([]mcpserver.Event{event(1, `1`)}, events) {
			t.Errorf("waiting Read = %v", events)
		}
	case <-time.After(timeout):
		t.Fatalf("a waiting Read was not woken by WriteStream")
	}
}

func testWriteStreamNoAliasing(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx := ctxFor(t)
	s, w := writer(t, newStores)
	sid, stream := newID(), newID()
	data := []byte(`"original"`)
	writeWant(t, ctx, w, sid, stream, &mcpserver.StreamWrite{Events: [][]byte{data}}, 1)
	copy(data, `"mutated!"`)
	readWant(t, ctx, s.Events, sid, stream, []mcpserver.Event{event(1, `"original"`)}, false)
}

// idStrings makes request ids comparable.
func idStrings(ids []json.RawMessage) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

// eventsEqual compares event lists, treating nil and empty alike.
func eventsEqual(a, b []mcpserver.Event) bool {
	return slices.EqualFunc(a, b, func(x, y mcpserver.Event) bool {
		return x.Seq == y.Seq && string(x.Data) == string(y.Data)
	})
}

func testInbox(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	t.Run("DeliverWithoutListener", func(t *testing.T) { testInboxDeliverWithoutListener(t, newStores) })
	t.Run("ListenDeliver", func(t *testing.T) { testInboxListenDeliver(t, newStores) })
	t.Run("KeysAreScoped", func(t *testing.T) { testInboxKeysAreScoped(t, newStores) })
	t.Run("Stop", func(t *testing.T) { testInboxStop(t, newStores) })
	t.Run("SecondListen", func(t *testing.T) { testInboxSecondListen(t, newStores) })
	t.Run("NoAliasing", func(t *testing.T) { testInboxNoAliasing(t, newStores) })
}

// receiveMessage returns the next message of msgs, failing the test if none
// comes within timeout.
func receiveMessage(t *testing.T, msgs <-chan []byte) string {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatalf("Listen channel closed, want a message")
		}
		return string(m)
	case <-time.After(timeout):
		t.Fatalf("no message within %v", timeout)
		return ""
	}
}

// listen listens for key and stops listening when the test ends.
func listen(t *testing.T, ctx context.Context, in mcpserver.Inbox, sid, key string) (<-chan []byte, func()) {
	t.Helper()
	msgs, stop, err := in.Listen(ctx, sid, key)
	if err != nil {
		t.Fatalf("Listen(%s): %v", key, err)
	}
	t.Cleanup(stop)
	return msgs, stop
}

// receivesNothing checks that msgs receives nothing for a while.
func receivesNothing(t *testing.T, msgs <-chan []byte) {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if ok {
			t.Errorf("received %s, want nothing", m)
		}
	case <-time.After(quiet):
	}
}

// unheard checks Deliver's answer for a key nobody listens to.
func unheard(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Deliver with no listener error = %v, want nil or ErrNotFound", err)
	}
}

func testInboxDeliverWithoutListener(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, in := ctxFor(t), newStores(t).Inbox
	unheard(t, in.Deliver(ctx, newID(), "resp:1", []byte(`{}`)))
	// Also once the store has had listeners.
	sid := newID()
	_, stop := listen(t, ctx, in, sid, "resp:1")
	stop()
	unheard(t, in.Deliver(ctx, sid, "resp:2", []byte(`{}`)))
}

func testInboxListenDeliver(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, in := ctxFor(t), newStores(t).Inbox
	sid := newID()
	msgs, _ := listen(t, ctx, in, sid, `resp:"a.1"`)
	want := []string{`{"jsonrpc":"2.0","id":"a.1","result":{}}`, `{"second":true}`, `{"third":true}`}
	for _, m := range want {
		if err := in.Deliver(ctx, sid, `resp:"a.1"`, []byte(m)); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	var got []string
	for range want {
		got = append(got, receiveMessage(t, msgs))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages received (-want +got):\n%s", diff)
	}
}

func testInboxKeysAreScoped(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, in := ctxFor(t), newStores(t).Inbox
	sid := newID()
	msgs, _ := listen(t, ctx, in, sid, "req:1")
	for _, tt := range []struct {
		name     string
		sid, key string
	}{
		{"other key", sid, "req:2"},
		{"same key, other session", newID(), "req:1"},
		{"string and number IDs differ", sid, `req:"1"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			unheard(t, in.Deliver(ctx, tt.sid, tt.key, []byte(`"`+tt.name+`"`)))
		})
	}
	// Deliveries reach a listener in order: if any of the above had
	// reached it, it would come first.
	if err := in.Deliver(ctx, sid, "req:1", []byte(`"mine"`)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := receiveMessage(t, msgs); got != `"mine"` {
		t.Errorf("received %s, want only \"mine\"", got)
	}
	receivesNothing(t, msgs)
}

func testInboxStop(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, in := ctxFor(t), newStores(t).Inbox
	sid := newID()
	stopped, stop := listen(t, ctx, in, sid, "req:2")
	stop()
	unheard(t, in.Deliver(ctx, sid, "req:2", []byte(`{}`)))
	receivesNothing(t, stopped)
	stop() // idempotent
	// The key is free again.
	_, stop = listen(t, ctx, in, sid, "req:1")
	stop()
	msgs, _ := listen(t, ctx, in, sid, "req:1")
	if err := in.Deliver(ctx, sid, "req:1", []byte(`"again"`)); err != nil {
		t.Fatalf("Deliver to a new listener: %v", err)
	}
	if got := receiveMessage(t, msgs); got != `"again"` {
		t.Errorf("received %s, want \"again\"", got)
	}
}

func testInboxSecondListen(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, in := ctxFor(t), newStores(t).Inbox
	sid := newID()
	msgs, _ := listen(t, ctx, in, sid, "resp:7")
	if _, stop, err := in.Listen(ctx, sid, "resp:7"); err == nil {
		stop()
		t.Fatalf("second Listen on the same key succeeded, want an error")
	}
	// The failed Listen must not have displaced the first listener.
	if err := in.Deliver(ctx, sid, "resp:7", []byte(`"first"`)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := receiveMessage(t, msgs); got != `"first"` {
		t.Errorf("received %s, want \"first\"", got)
	}
}

func testInboxNoAliasing(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, in := ctxFor(t), newStores(t).Inbox
	sid := newID()
	msgs, _ := listen(t, ctx, in, sid, "req:1")
	data := []byte(`"original"`)
	if err := in.Deliver(ctx, sid, "req:1", data); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	copy(data, `"mutated!"`)
	if got := receiveMessage(t, msgs); got != `"original"` {
		t.Errorf("received %s, want \"original\": the message shares memory with the sender", got)
	}
}

func testBroadcaster(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	t.Run("PublishWithoutSubscribers", func(t *testing.T) { testBroadcasterPublishWithoutSubscribers(t, newStores) })
	t.Run("ReachesEverySubscriber", func(t *testing.T) { testBroadcasterReachesEverySubscriber(t, newStores) })
	t.Run("OnlyAfterSubscribe", func(t *testing.T) { testBroadcasterOnlyAfterSubscribe(t, newStores) })
	t.Run("Stop", func(t *testing.T) { testBroadcasterStop(t, newStores) })
}

// subscribe subscribes to b and unsubscribes when the test ends.
func subscribe(t *testing.T, ctx context.Context, b mcpserver.Broadcaster) (<-chan mcpserver.Broadcast, func()) {
	t.Helper()
	msgs, stop, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(stop)
	return msgs, stop
}

// receiveBroadcast returns the next broadcast of msgs, failing the test if
// none comes within timeout.
func receiveBroadcast(t *testing.T, msgs <-chan mcpserver.Broadcast) mcpserver.Broadcast {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatalf("Subscribe channel closed, want a broadcast")
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("no broadcast within %v", timeout)
		return mcpserver.Broadcast{}
	}
}

// tagged returns the next broadcast of msgs tagged tag. A shared store
// (Redis) sees broadcasts of other tests: each subtest tags its own with a
// fresh URI and ignores the rest.
func tagged(t *testing.T, msgs <-chan mcpserver.Broadcast, tag string) mcpserver.Broadcast {
	t.Helper()
	for {
		if m := receiveBroadcast(t, msgs); m.URI == tag || m.Owner == tag {
			return m
		}
	}
}

func testBroadcasterPublishWithoutSubscribers(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, b := ctxFor(t), newStores(t).Broadcaster
	if err := b.Publish(ctx, mcpserver.Broadcast{Method: "notifications/tools/list_changed"}); err != nil {
		t.Errorf("Publish: %v", err)
	}
}

func testBroadcasterReachesEverySubscriber(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, b := ctxFor(t), newStores(t).Broadcaster
	tag := "notes://" + newID()
	subs := make([]<-chan mcpserver.Broadcast, 3)
	for i := range subs {
		subs[i], _ = subscribe(t, ctx, b)
	}
	want := []mcpserver.Broadcast{
		{Method: "notifications/resources/updated", URI: tag, Owner: "alice"},
		{Method: "notifications/resources/list_changed", URI: tag},
		{Method: "notifications/resources/updated", URI: tag, Owner: "bob"},
	}
	for _, m := range want {
		if err := b.Publish(ctx, m); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	for i, msgs := range subs {
		var got []mcpserver.Broadcast
		for range want {
			got = append(got, tagged(t, msgs, tag))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("subscriber %d received (-want +got):\n%s", i, diff)
		}
	}
}

func testBroadcasterOnlyAfterSubscribe(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, b := ctxFor(t), newStores(t).Broadcaster
	tag := "notes://" + newID()
	if err := b.Publish(ctx, mcpserver.Broadcast{Method: "before", URI: tag}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	msgs, _ := subscribe(t, ctx, b)
	want := mcpserver.Broadcast{Method: "after", URI: tag}
	if err := b.Publish(ctx, want); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if diff := cmp.Diff(want, tagged(t, msgs, tag)); diff != "" {
		t.Errorf("first broadcast received (-want +got):\n%s", diff)
	}
}

func testBroadcasterStop(t *testing.T, newStores func(t *testing.T) mcpserver.Stores) {
	ctx, b := ctxFor(t), newStores(t).Broadcaster
	tag := "notes://" + newID()
	stopped, stop := subscribe(t, ctx, b)
	live, _ := subscribe(t, ctx, b)
	stop()
	stop() // idempotent
	want := mcpserver.Broadcast{Method: "notifications/resources/list_changed", URI: tag}
	if err := b.Publish(ctx, want); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if diff := cmp.Diff(want, tagged(t, live, tag)); diff != "" {
		t.Errorf("live subscriber received (-want +got):\n%s", diff)
	}
	// A stopped subscription may be closed, or silent; it must not
	// deliver what was published after stop.
	deadline := time.After(quiet)
	for {
		select {
		case m, ok := <-stopped:
			if !ok {
				return
			}
			if m.URI == tag {
				t.Fatalf("stopped subscriber received %+v", m)
			}
		case <-deadline:
			return
		}
	}
}
