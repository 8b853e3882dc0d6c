package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/internal/redistest"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/redisstore"
	"github.com/remotemcp/remotemcp/mcpserver/storetest"
)

// newClient returns a client of srv as a replica should configure it:
// request deadlines apply to Redis calls, and a dead server is noticed
// fast. (go-redis' defaults, five dial attempts for each of four command
// attempts, make the first call after Redis died take about 1.7s.)
func newClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		DialerRetries:         2,
	})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newStores returns stores on rdb under prefix, closed when the test ends.
func newStores(t *testing.T, rdb redis.UniversalClient, opts *redisstore.Options) mcpserver.Stores {
	t.Helper()
	s, stop := redisstore.New(rdb, opts)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

// uniquePrefix keeps the keys and channels of one test apart from every
// other's on a shared server.
func uniquePrefix() string { return "test:" + rand.Text()[:10] + ":" }

func TestContract(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	storetest.Run(t, func(t *testing.T) mcpserver.Stores {
		return newStores(t, rdb, &redisstore.Options{KeyPrefix: uniquePrefix()})
	})
}

// TestCrossReplica runs two replicas, each with its own client (its own
// connections) on one Redis, and checks that what one does the other sees.
func TestCrossReplica(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix()
	a := newStores(t, newClient(t, srv), &redisstore.Options{KeyPrefix: prefix})
	b := newStores(t, newClient(t, srv), &redisstore.Options{KeyPrefix: prefix})
	ctx := t.Context()
	// waiting receives the stream of each Read on B that starts waiting.
	waiting := make(chan string, 16)
	redisstore.OnWait(b.Events, func(stream string) { waiting <- stream })
	awaitWaiting := func(t *testing.T, stream string) {
		t.Helper()
		for {
			select {
			case s := <-waiting:
				if s == stream {
					return
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the Read on B did not start waiting")
			}
		}
	}

	t.Run("session", func(t *testing.T) {
		id := rand.Text()
		if err := a.Sessions.Create(ctx, &mcpserver.Session{ID: id, Subject: "alice"}); err != nil {
			t.Fatalf("Create on A: %v", err)
		}
		if err := b.Sessions.Update(ctx, id, func(s *mcpserver.Session) { s.State.LogLevel = "debug" }); err != nil {
			t.Fatalf("Update on B: %v", err)
		}
		got, err := a.Sessions.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get on A: %v", err)
		}
		if got.Subject != "alice" || got.State.LogLevel != "debug" {
			t.Errorf("Get on A = %+v, want alice's session with B's update", got)
		}
	})

	t.Run("resume on another replica", func(t *testing.T) {
		sid, stream := rand.Text(), rand.Text()
		if _, err := a.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{}); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{`"one"`, `"two"`} {
			if _, err := a.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Events: [][]byte{[]byte(m)}}); err != nil {
				t.Fatal(err)
			}
		}
		got, ended, err := b.Events.Read(ctx, sid, stream, 1, 0)
		if err != nil || ended {
			t.Fatalf("Read on B = %v, %v, %v", got, ended, err)
		}
		if diff := cmp.Diff([]mcpserver.Event{{Seq: 2, Data: []byte(`"two"`)}}, got); diff != "" {
			t.Errorf("Read on B after 1 (-want +got):\n%s", diff)
		}
	})

	// A Read waiting on B wakes as soon as A appends or ends, through the
	// wake channel, rather than when its wait is over.
	t.Run("wait on another replica", func(t *testing.T) {
		sid, stream := rand.Text(), rand.Text()
		if _, err := a.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{}); err != nil {
			t.Fatal(err)
		}
		type result struct {
			events []mcpserver.Event
			ended  bool
			err    error
			took   time.Duration
		}
		read := func(after int64) <-chan result {
			ch := make(chan result, 1)
			go func() {
				start := time.Now()
				ev, ended, err := b.Events.Read(ctx, sid, stream, after, time.Minute)
				ch <- result{ev, ended, err, time.Since(start)}
			}()
			awaitWaiting(t, stream)
			return ch
		}
		ch := read(0)
		if _, err := a.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Events: [][]byte{[]byte(`"x"`)}}); err != nil {
			t.Fatal(err)
		}
		r := <-ch
		if r.err != nil || len(r.events) != 1 || r.took > 2*time.Second {
			t.Errorf("Read on B woken by Append on A = %v, %v after %v", r.events, r.err, r.took)
		}
		ch = read(1)
		if _, err := a.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{End: true}); err != nil {
			t.Fatal(err)
		}
		r = <-ch
		if r.err != nil || !r.ended || r.took > 2*time.Second {
			t.Errorf("Read on B woken by End on A = ended %v, %v after %v", r.ended, r.err, r.took)
		}
		// DeleteSession on A ends a Read waiting on B.
		stream2 := rand.Text()
		if _, err := a.Events.WriteStream(ctx, sid, stream2, &mcpserver.StreamWrite{}); err != nil {
			t.Fatal(err)
		}
		ch2 := make(chan result, 1)
		go func() {
			start := time.Now()
			ev, ended, err := b.Events.Read(ctx, sid, stream2, 0, time.Minute)
			ch2 <- result{ev, ended, err, time.Since(start)}
		}()
		awaitWaiting(t, stream2)
		if err := a.Events.DeleteSession(ctx, sid); err != nil {
			t.Fatal(err)
		}
		r = <-ch2
		if !errors.Is(r.err, mcpserver.ErrNotFound) || r.took > 2*time.Second {
			t.Errorf("Read on B across DeleteSession on A = %v after %v, want ErrNotFound at once", r.err, r.took)
		}
	})

	t.Run("inbox", func(t *testing.T) {
		sid := rand.Text()
		msgs, stop, err := a.Inbox.Listen(ctx, sid, `resp:"s.1"`)
		if err != nil {
			t.Fatalf("Listen on A: %v", err)
		}
		defer stop()
		if err := b.Inbox.Deliver(ctx, sid, `resp:"s.1"`, []byte(`{"result":{}}`)); err != nil {
			t.Fatalf("Deliver on B: %v", err)
		}
		select {
		case m := <-msgs:
			if string(m) != `{"result":{}}` {
				t.Errorf("A received %s", m)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Deliver on B did not reach the listener on A")
		}
		stop()
		if err := b.Inbox.Deliver(ctx, sid, `resp:"s.1"`, []byte(`{}`)); err != nil && !errors.Is(err, mcpserver.ErrNotFound) {
			t.Errorf("Deliver on B after stop on A = %v, want nil or ErrNotFound", err)
		}
		if m, ok := <-msgs; ok {
			t.Errorf("A received %s after stop", m)
		}
	})

	t.Run("broadcast", func(t *testing.T) {
		msgs, stop, err := b.Broadcaster.Subscribe(ctx)
		if err != nil {
			t.Fatalf("Subscribe on B: %v", err)
		}
		defer stop()
		want := mcpserver.Broadcast{Method: "notifications/resources/updated", URI: "notes://alice/1", Owner: "alice"}
		if err := a.Broadcaster.Publish(ctx, want); err != nil {
			t.Fatalf("Publish on A: %v", err)
		}
		select {
		case got := <-msgs:
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("B received (-want +got):\n%s", diff)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Publish on A did not reach the subscriber on B")
		}
	})
}

// workload exercises every store of s with each session ID.
func workload(t *testing.T, s mcpserver.Stores, ids ...string) {
	t.Helper()
	ctx := t.Context()
	for _, id := range ids {
		if err := s.Sessions.Create(ctx, &mcpserver.Session{ID: id, Subject: "alice"}); err != nil {
			t.Fatalf("Create(%q): %v", id, err)
		}
		if err := s.Sessions.Update(ctx, id, func(s *mcpserver.Session) { s.Subscriptions = []string{"notes://alice/1"} }); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if _, err := s.Events.WriteStream(ctx, id, "_GET", &mcpserver.StreamWrite{}); err != nil {
			t.Fatalf("Open: %v", err)
		}
		for _, stream := range []string{"r1", "r2", "r}{"} {
			if _, err := s.Events.WriteStream(ctx, id, stream, &mcpserver.StreamWrite{Events: [][]byte{[]byte(`{}`)}}); err != nil {
				t.Fatalf("Append: %v", err)
			}
			if _, err := s.Events.WriteStream(ctx, id, stream, &mcpserver.StreamWrite{End: true}); err != nil {
				t.Fatalf("End: %v", err)
			}
		}
		if _, _, err := s.Events.Read(ctx, id, "r1", 0, 10*time.Millisecond); err != nil {
			t.Fatalf("Read: %v", err)
		}
		for _, w := range []*mcpserver.StreamWrite{
			{Session: true, Owner: "me", IDs: []json.RawMessage{json.RawMessage(`1`)}, LeaseTTL: time.Minute, Events: [][]byte{[]byte(`{}`)}},
			{Session: true, Events: [][]byte{[]byte(`{}`)}, End: true},
		} {
			if _, err := s.Events.WriteStream(ctx, id, "w1", w); err != nil {
				t.Fatalf("WriteStream: %v", err)
			}
		}
		_, stop, err := s.Inbox.Listen(ctx, id, "req:1")
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		if err := s.Inbox.Deliver(ctx, id, "req:1", []byte(`{}`)); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		stop()
	}
	if err := s.Broadcaster.Publish(ctx, mcpserver.Broadcast{Method: "notifications/tools/list_changed"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// scan returns every key under prefix.
func scan(t *testing.T, rdb redis.UniversalClient, prefix string) []string {
	t.Helper()
	var keys []string
	iter := rdb.Scan(t.Context(), 0, prefix+"*", 100).Iterator()
	for iter.Next(t.Context()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	return keys
}

func TestEveryKeyHasTTL(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	prefix := uniquePrefix()
	const sessionTTL, eventTTL, window = 10 * time.Minute, 5 * time.Minute, time.Minute
	s := newStores(t, rdb, &redisstore.Options{KeyPrefix: prefix, SessionTTL: sessionTTL, EventTTL: eventTTL, ResumeWindow: window})
	workload(t, s, rand.Text(), rand.Text())
	keys := scan(t, rdb, prefix)
	// Per session: the record, its subscriptions, the index, five
	// streams, a lease, the list of completed streams and the counter of
	// their bytes; and the subject's set of sessions.
	if len(keys) != 2*(1+1+1+5+1+2)+1 {
		t.Errorf("the workload left %d keys, want 23: %q", len(keys), keys)
	}
	for _, k := range keys {
		ttl, err := rdb.PTTL(t.Context(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		limit := eventTTL
		switch {
		case strings.HasSuffix(k, ":session"), strings.HasSuffix(k, ":subs"):
			limit = sessionTTL
		case strings.Contains(k, "{u:"):
			limit = 24 * time.Hour // a subject's set of sessions
		case strings.Contains(k, ":events:r") || strings.Contains(k, ":events:w") || strings.Contains(k, ":lease:"):
			limit = window // completed streams and their leases
		}
		if ttl <= 0 || ttl > limit {
			t.Errorf("PTTL %s = %v, want in (0, %v]", k, ttl, limit)
		}
	}
}

// TestKeysShareSlot checks that every key of a session carries the same
// hash tag, and so lives in one Cluster slot, whatever the session ID, and
// that two sessions never share one.
func TestKeysShareSlot(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	prefix := uniquePrefix()
	s := newStores(t, rdb, &redisstore.Options{KeyPrefix: prefix})
	ids := []string{rand.Text(), "a}b", "a", "{x}", "%7D", "}"}
	workload(t, s, ids...)
	slots := map[string]map[int]bool{} // hash tag → slots of its keys
	for _, k := range scan(t, rdb, prefix) {
		tag, ok := hashTag(k)
		if !ok {
			t.Errorf("key %q has no hash tag", k)
			continue
		}
		if strings.HasPrefix(tag, "u:") {
			continue // a subject's set of sessions, not a session's key
		}
		if slots[tag] == nil {
			slots[tag] = map[int]bool{}
		}
		slots[tag][keySlot(k)] = true
	}
	if len(slots) != len(ids) {
		t.Errorf("%d sessions used %d hash tags: %v", len(ids), len(slots), slots)
	}
	for tag, s := range slots {
		if len(s) != 1 {
			t.Errorf("the keys of %s are in slots %v", tag, s)
		}
	}
}

// hashTag returns the part of key that Redis Cluster hashes, if it is a tag.
func hashTag(key string) (string, bool) {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j], true
		}
	}
	return key, false
}

// keySlot is Redis Cluster's key → slot function (CRC16/XMODEM mod 16384).
func keySlot(key string) int {
	tag, _ := hashTag(key)
	var crc uint16
	for _, c := range []byte(tag) {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}

func TestKeySlot(t *testing.T) {
	// Values from the Redis documentation of CLUSTER KEYSLOT.
	for key, want := range map[string]int{"somekey": 11058, "foo{hash_tag}": 2515, "{hash_tag}bar": 2515, "123456789": 0x31c3 % 16384} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestMaxEventsPerStream(t *testing.T) {
	srv := redistest.Start(t)
	s := newStores(t, newClient(t, srv), &redisstore.Options{KeyPrefix: uniquePrefix(), MaxEventsPerStream: 3})
	ctx := t.Context()
	if _, err := s.Events.WriteStream(ctx, "s", "r", &mcpserver.StreamWrite{}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		seq, err := s.Events.WriteStream(ctx, "s", "r", &mcpserver.StreamWrite{Events: [][]byte{fmt.Appendf(nil, "%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if seq != int64(i) {
			t.Errorf("Append %d = seq %d", i, seq)
		}
	}
	if _, err := s.Events.WriteStream(ctx, "s", "r", &mcpserver.StreamWrite{End: true}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		after int64
		want  []mcpserver.Event
	}{
		{"oldest dropped", 0, []mcpserver.Event{{Seq: 3, Data: []byte("3")}, {Seq: 4, Data: []byte("4")}, {Seq: 5, Data: []byte("5")}}},
		{"after a kept event", 4, []mcpserver.Event{{Seq: 5, Data: []byte("5")}}},
		{"after the last", 5, nil},
		{"beyond the last", 9, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ended, err := s.Events.Read(ctx, "s", "r", tt.after, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if !ended {
				t.Errorf("ended = false")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Read(after %d) (-want +got):\n%s", tt.after, diff)
			}
		})
	}
}

// TestTTL checks the idle lifetimes on the real clock: Get extends a
// session, and an unused stream is forgotten.
func TestTTL(t *testing.T) {
	srv := redistest.Start(t)
	const ttl = 400 * time.Millisecond
	s := newStores(t, newClient(t, srv), &redisstore.Options{KeyPrefix: uniquePrefix(), SessionTTL: ttl, EventTTL: ttl})
	ctx := t.Context()
	if err := s.Sessions.Create(ctx, &mcpserver.Session{ID: "s1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Events.WriteStream(ctx, "s1", "r", &mcpserver.StreamWrite{Events: [][]byte{[]byte(`1`)}}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // 3 × 250ms > ttl: only the Gets keep it alive
		time.Sleep(ttl * 5 / 8)
		if _, err := s.Sessions.Get(ctx, "s1"); err != nil {
			t.Fatalf("Get within the TTL of the last Get: %v", err)
		}
	}
	if _, _, err := s.Events.Read(ctx, "s1", "r", 0, 0); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Read of a stream unused for longer than its TTL = %v, want ErrNotFound", err)
	}
	time.Sleep(ttl + 100*time.Millisecond)
	if _, err := s.Sessions.Get(ctx, "s1"); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Get after the TTL = %v, want ErrNotFound", err)
	}
	if err := s.Sessions.Update(ctx, "s1", func(*mcpserver.Session) {}); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Update after the TTL = %v, want ErrNotFound", err)
	}
}

// TestRedisDown checks that with Redis gone every call fails fast with an
// error that is not ErrNotFound (which the Handler would turn into a 404
// and a lost session), and that everything works again once Redis is back,
// empty: sessions are then cleanly not found.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	s := newStores(t, newClient(t, srv), &redisstore.Options{KeyPrefix: uniquePrefix()})
	ctx := context.Background() // no deadline: the stores must not hang by themselves
	sid := rand.Text()
	if err := s.Sessions.Create(ctx, &mcpserver.Session{ID: sid}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Events.WriteStream(ctx, sid, "r", &mcpserver.StreamWrite{Events: [][]byte{[]byte(`1`)}}); err != nil {
		t.Fatal(err)
	}
	sub, stopSub, err := s.Broadcaster.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopSub()

	srv.Kill()
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"Create", func() error { return s.Sessions.Create(ctx, &mcpserver.Session{ID: rand.Text()}) }},
		{"Get", func() error { _, err := s.Sessions.Get(ctx, sid); return err }},
		{"Update", func() error { return s.Sessions.Update(ctx, sid, func(*mcpserver.Session) {}) }},
		{"Delete", func() error { return s.Sessions.Delete(ctx, sid) }},
		{"WriteStream (open)", func() error { _, err := s.Events.WriteStream(ctx, sid, "r2", &mcpserver.StreamWrite{}); return err }},
		{"WriteStream (event)", func() error {
			_, err := s.Events.WriteStream(ctx, sid, "r", &mcpserver.StreamWrite{Events: [][]byte{[]byte(`2`)}})
			return err
		}},
		{"WriteStream (end)", func() error {
			_, err := s.Events.WriteStream(ctx, sid, "r", &mcpserver.StreamWrite{End: true})
			return err
		}},
		{"Read", func() error { _, _, err := s.Events.Read(ctx, sid, "r", 0, time.Minute); return err }},
		{"DeleteSession", func() error { return s.Events.DeleteSession(ctx, sid) }},
		{"Deliver", func() error { return s.Inbox.Deliver(ctx, sid, "req:1", []byte(`{}`)) }},
		{"Listen", func() error {
			_, stop, err := s.Inbox.Listen(ctx, sid, "req:2")
			if err == nil {
				stop()
			}
			return err
		}},
		{"Publish", func() error { return s.Broadcaster.Publish(ctx, mcpserver.Broadcast{Method: "m"}) }},
		{"Subscribe", func() error {
			_, stop, err := s.Broadcaster.Subscribe(ctx)
			if err == nil {
				stop()
			}
			return err
		}},
	} {
		t.Run("down/"+tt.name, func(t *testing.T) {
			start := time.Now()
			err := tt.call()
			took := time.Since(start)
			if err == nil || errors.Is(err, mcpserver.ErrNotFound) || errors.Is(err, redis.Nil) {
				t.Errorf("%s with Redis down = %v, want an error other than not found", tt.name, err)
			}
			if took > 2*time.Second {
				t.Errorf("%s with Redis down took %v, want < 2s", tt.name, took)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "redisstore: ") {
				t.Errorf("%s error %q lacks context", tt.name, err)
			}
		})
	}

	srv.Restart()
	// The pool's connections died with the server; go-redis replaces them.
	eventually(t, "Get after a restart returns ErrNotFound", func() error {
		if _, err := s.Sessions.Get(ctx, sid); !errors.Is(err, mcpserver.ErrNotFound) {
			return fmt.Errorf("Get = %v", err)
		}
		return nil
	})
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"Update", func() error { return s.Sessions.Update(ctx, sid, func(*mcpserver.Session) {}) }},
		{"Read", func() error { _, _, err := s.Events.Read(ctx, sid, "r", 0, time.Minute); return err }},
	} {
		if err := tt.call(); !errors.Is(err, mcpserver.ErrNotFound) {
			t.Errorf("%s after a restart = %v, want ErrNotFound", tt.name, err)
		}
	}
	// Nobody listens: Deliver says so, or, once the replica's pub/sub
	// connection is subscribed again, cannot know.
	if err := s.Inbox.Deliver(ctx, sid, "req:1", []byte(`{}`)); err != nil && !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Deliver after a restart = %v, want nil or ErrNotFound", err)
	}
	// A subscription made before the restart receives again, once the
	// shared pub/sub connection is back.
	eventually(t, "a subscription made before the restart receives", func() error {
		if err := s.Broadcaster.Publish(ctx, mcpserver.Broadcast{Method: "after-restart"}); err != nil {
			return err
		}
		for {
			select {
			case m, ok := <-sub:
				if !ok {
					return errors.New("the subscription was closed")
				}
				if m.Method == "after-restart" {
					return nil
				}
			case <-time.After(200 * time.Millisecond):
				return errors.New("nothing received")
			}
		}
	})
	// And new sessions work.
	workload(t, s, rand.Text())
}

// TestRedisPaused checks that a hung Redis (SIGSTOP, as in a network
// partition) costs a caller at most its context's deadline.
func TestRedisPaused(t *testing.T) {
	srv := redistest.Start(t)
	s := newStores(t, newClient(t, srv), &redisstore.Options{KeyPrefix: uniquePrefix()})
	sid := rand.Text()
	if err := s.Sessions.Create(t.Context(), &mcpserver.Session{ID: sid}); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	for _, tt := range []struct {
		name string
		call func(ctx context.Context) error
		// local: the call needs no round trip once the stores are
		// subscribed, and may succeed.
		local bool
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Sessions.Get(ctx, sid); return err }, false},
		{"Listen", func(ctx context.Context) error {
			_, stop, err := s.Inbox.Listen(ctx, sid, "req:1")
			if err == nil {
				stop()
			}
			return err
		}, true},
		{"Subscribe", func(ctx context.Context) error {
			_, stop, err := s.Broadcaster.Subscribe(ctx)
			if err == nil {
				stop()
			}
			return err
		}, false},
		{"Read", func(ctx context.Context) error { _, _, err := s.Events.Read(ctx, sid, "r", 0, time.Minute); return err }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tt.call(ctx)
			if (err == nil && !tt.local) || errors.Is(err, mcpserver.ErrNotFound) {
				t.Errorf("%s on a paused Redis = %v, want an error other than not found", tt.name, err)
			}
			if took := time.Since(start); took > 1500*time.Millisecond {
				t.Errorf("%s on a paused Redis took %v, want about its deadline", tt.name, took)
			}
		})
	}
	srv.Resume()
	eventually(t, "Get after Resume", func() error { _, err := s.Sessions.Get(t.Context(), sid); return err })
}

// eventually retries f for up to 10s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countHook counts the round trips of a client: one per command or
// pipeline sent (pub/sub traffic is not counted: it has its own connection).
type countHook struct {
	n     atomic.Int64
	mu    sync.Mutex
	names map[string]int // round trips by command (EVALSHA by script hash prefix)
	// sent, if set before the client's first command, is called with the
	// name of each command.
	sent func(name string)
}

func (h *countHook) count(name string) {
	h.n.Add(1)
	if h.sent != nil {
		h.sent(name)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.names == nil {
		h.names = map[string]int{}
	}
	h.names[name]++
}

// reset returns the counts by command so far and starts again.
func (h *countHook) reset() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.names
	h.names = nil
	return m
}

func cmdName(cmd redis.Cmder) string {
	if args := cmd.Args(); len(args) > 1 && cmd.Name() == "evalsha" {
		if sha, ok := args[1].(string); ok && len(sha) > 8 {
			return "evalsha " + sha[:8]
		}
	}
	return cmd.Name()
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmdName(cmd))
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.count("pipeline")
		return next(ctx, cmds)
	}
}

// TestRoundTrips counts the Redis round trips of each operation, with the
// scripts already cached (the first run of a script costs one more:
// EVALSHA, NOSCRIPT, EVAL).
func TestRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	hook := &countHook{}
	rdb.AddHook(hook)
	s := newStores(t, rdb, &redisstore.Options{KeyPrefix: uniquePrefix()})
	ctx := t.Context()
	sid, stream := rand.Text(), rand.Text()
	// Load the scripts.
	warm := rand.Text()
	workload(t, s, warm)
	leaser := s.Leases
	if _, err := leaser.Lease(ctx, warm, warm, "me", nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := leaser.LeaseHolder(ctx, warm, warm); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Events.WriteStream(ctx, warm, warm, &mcpserver.StreamWrite{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Events.DeleteSession(ctx, warm); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name string
		want int64
		call func() error
	}{
		{"Sessions.Create", 2, func() error { return s.Sessions.Create(ctx, &mcpserver.Session{ID: sid}) }},
		{"Sessions.Get", 1, func() error { _, err := s.Sessions.Get(ctx, sid); return err }},
		{"Sessions.Update", 2, func() error { return s.Sessions.Update(ctx, sid, func(*mcpserver.Session) {}) }},
		{"Events.WriteStream (open)", 1, func() error { _, err := s.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{}); return err }},
		{"Events.WriteStream (one event)", 1, func() error {
			_, err := s.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Events: [][]byte{[]byte(`{}`)}})
			return err
		}},
		{"Events.Read (events ready)", 1, func() error { _, _, err := s.Events.Read(ctx, sid, stream, 0, time.Minute); return err }},
		{"Leases.Lease", 1, func() error {
			_, err := leaser.Lease(ctx, sid, stream, "me", []json.RawMessage{json.RawMessage(`1`)}, time.Minute)
			return err
		}},
		{"Leases.LeaseHolder", 1, func() error {
			_, _, _, err := leaser.LeaseHolder(ctx, sid, stream)
			return err
		}},
		{"Events.WriteStream (end)", 1, func() error {
			_, err := s.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{End: true})
			return err
		}},
		{"Events.WriteStream (whole request)", 1, func() error {
			_, err := s.Events.WriteStream(ctx, sid, rand.Text(), &mcpserver.StreamWrite{Session: true,
				Owner: "me", IDs: []json.RawMessage{json.RawMessage(`1`)}, LeaseTTL: time.Minute, Events: [][]byte{[]byte(`{}`), []byte(`{}`)}, End: true})
			return err
		}},
		{"Events.DeleteSession", 2, func() error { return s.Events.DeleteSession(ctx, sid) }},
		{"Sessions.Delete", 1, func() error { return s.Sessions.Delete(ctx, sid) }},
		{"Inbox.Deliver", 1, func() error {
			if err := s.Inbox.Deliver(ctx, sid, "k", nil); !errors.Is(err, mcpserver.ErrNotFound) {
				return err
			}
			return nil
		}},
		{"Broadcaster.Publish", 1, func() error { return s.Broadcaster.Publish(ctx, mcpserver.Broadcast{Method: "m"}) }},
	} {
		before := hook.n.Load()
		if err := tt.call(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := hook.n.Load() - before
		t.Logf("%-28s %d round trip(s)", tt.name, got)
		if got != tt.want {
			t.Errorf("%s took %d round trips, want %d", tt.name, got, tt.want)
		}
	}
}

// TestConcurrentChurn drives the shared pub/sub connection from many
// goroutines at once: listeners, subscribers and waiting reads come and go
// on one replica while another delivers, publishes and appends.
func TestConcurrentChurn(t *testing.T) {
	srv := redistest.Start(t)
	prefix := uniquePrefix()
	a := newStores(t, newClient(t, srv), &redisstore.Options{KeyPrefix: prefix})
	b := newStores(t, newClient(t, srv), &redisstore.Options{KeyPrefix: prefix})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	sid := rand.Text()
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() { // an inbox key per round, listened on A, delivered from B
			for i := range 10 {
				key := fmt.Sprintf("resp:%d.%d", g, i)
				msgs, stop, err := a.Inbox.Listen(ctx, sid, key)
				if err != nil {
					t.Errorf("Listen: %v", err)
					return
				}
				if err := b.Inbox.Deliver(ctx, sid, key, []byte(key)); err != nil {
					t.Errorf("Deliver(%s): %v", key, err)
				}
				select {
				case m := <-msgs:
					if string(m) != key {
						t.Errorf("listener of %s received %s", key, m)
					}
				case <-ctx.Done():
					t.Errorf("listener of %s received nothing", key)
				}
				stop()
				if err := b.Inbox.Deliver(ctx, sid, key, []byte(key)); err != nil && !errors.Is(err, mcpserver.ErrNotFound) {
					t.Errorf("Deliver(%s) after stop = %v, want nil or ErrNotFound", key, err)
				}
				if m, ok := <-msgs; ok {
					t.Errorf("listener of %s received %s after stop", key, m)
				}
			}
		})
	}
	for g := range 5 {
		wg.Go(func() { // broadcast subscribers on A, each waiting for its own tag from B
			for i := range 10 {
				msgs, stop, err := a.Broadcaster.Subscribe(ctx)
				if err != nil {
					t.Errorf("Subscribe: %v", err)
					return
				}
				tag := fmt.Sprintf("notes://%d/%d", g, i)
				if err := b.Broadcaster.Publish(ctx, mcpserver.Broadcast{Method: "m", URI: tag}); err != nil {
					t.Errorf("Publish: %v", err)
				}
				for got := false; !got; {
					select {
					case m := <-msgs:
						got = m.URI == tag
					case <-ctx.Done():
						t.Errorf("subscriber %s received nothing", tag)
						got = true
					}
				}
				stop()
			}
		})
	}
	waiting := map[string]chan struct{}{} // by stream: a Read on A waits
	for g := range 5 {
		waiting[fmt.Sprintf("r%d", g)] = make(chan struct{}, 1)
	}
	redisstore.OnWait(a.Events, func(stream string) {
		select {
		case waiting[stream] <- struct{}{}:
		default:
		}
	})
	for g := range 5 {
		wg.Go(func() { // reads waiting on A, woken by appends on B
			stream := fmt.Sprintf("r%d", g)
			if _, err := b.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{}); err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			for i := range 10 {
				done := make(chan error, 1)
				go func() {
					events, _, err := a.Events.Read(ctx, sid, stream, int64(i), time.Minute)
					if err == nil && (len(events) != 1 || events[0].Seq != int64(i+1)) {
						err = fmt.Errorf("read %v", events)
					}
					done <- err
				}()
				select {
				case <-waiting[stream]:
				case <-ctx.Done():
				}
				if _, err := b.Events.WriteStream(ctx, sid, stream, &mcpserver.StreamWrite{Events: [][]byte{[]byte(`{}`)}}); err != nil {
					t.Errorf("Append: %v", err)
				}
				if err := <-done; err != nil {
					t.Errorf("Read: %v", err)
				}
			}
		})
	}
	wg.Wait()
}

// TestStop checks that stop ends every subscription and refuses new ones,
// while the stores that need no subscription keep working.
func TestStop(t *testing.T) {
	srv := redistest.Start(t)
	s, stop := redisstore.New(newClient(t, srv), &redisstore.Options{KeyPrefix: uniquePrefix()})
	ctx := t.Context()
	msgs, stopListen, err := s.Inbox.Listen(ctx, "s", "k")
	if err != nil {
		t.Fatal(err)
	}
	subs, stopSub, err := s.Broadcaster.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if _, ok := <-msgs; ok {
		t.Errorf("Listen channel open after stop")
	}
	if _, ok := <-subs; ok {
		t.Errorf("Subscribe channel open after stop")
	}
	stopListen()
	stopSub()
	if _, _, err := s.Inbox.Listen(ctx, "s", "k2"); err == nil {
		t.Errorf("Listen after stop succeeded")
	}
	if err := s.Sessions.Create(ctx, &mcpserver.Session{ID: "s"}); err != nil {
		t.Errorf("Create after stop: %v", err)
	}
	if _, _, err := s.Events.Read(ctx, "s", "r", 0, 0); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("Read without wait after stop = %v, want ErrNotFound", err)
	}
}

// TestIdleSubscription checks that the shared pub/sub connection outlives
// the client's ReadTimeout while nothing is published: it waits without a
// deadline, and is not taken for dead.
func TestIdleSubscription(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true, ReadTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	s := newStores(t, rdb, &redisstore.Options{KeyPrefix: uniquePrefix(), Logger: logger})
	msgs, stop, err := s.Broadcaster.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	time.Sleep(time.Second)
	if err := s.Broadcaster.Publish(t.Context(), mcpserver.Broadcast{Method: "m"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-msgs:
	case <-time.After(2 * time.Second):
		t.Fatal("an idle subscription received nothing")
	}
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() > 0 {
		t.Errorf("an idle subscription logged:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestNewWiringMistakes(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	t.Cleanup(func() { ring.Close() })
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { client.Close() })
	for _, tt := range []struct {
		name string
		rdb  redis.UniversalClient
		opts *redisstore.Options
	}{
		{"nil client", nil, nil},
		{"ring", ring, nil},
		{"brace in prefix", client, &redisstore.Options{KeyPrefix: "app{1}:"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "redisstore: ") {
					t.Errorf("New = panic %v, want a redisstore: panic", r)
				}
			}()
			redisstore.New(tt.rdb, tt.opts)
		})
	}
}
