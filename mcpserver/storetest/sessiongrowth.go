package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/remotemcp/remotemcp/mcpserver"
)

// Bounds of the session record's growth tests: what a record may grow by
// when it is updated again and again with what it holds already, and what
// one subscription may cost.
const (
	recordSlack     = 256
	subscriptionMax = 320 // one short URI, and the key of the SET that holds it
)

// sessionRounds is how many times the session growth tests repeat an
// operation.
const sessionRounds = 200

func testSessionGrowth(t *testing.T, newStores func(t *testing.T, maxBytes int64) Timed) {
	t.Run("RecordTooLarge", func(t *testing.T) { testSessionGrowthTooLarge(t, newStores) })
	t.Run("Update", func(t *testing.T) { testSessionGrowthUpdate(t, newStores) })
	t.Run("Subscriptions", func(t *testing.T) { testSessionGrowthSubscriptions(t, newStores) })
}

// testSessionGrowthTooLarge: a record past MaxSessionBytes is refused by
// Create and by Update, which leaves the record as it was.
func testSessionGrowthTooLarge(t *testing.T, newStores func(t *testing.T, maxBytes int64) Timed) {
	ctx, s := ctxFor(t), newStores(t, 1<<20)
	big := session(newID())
	big.State.InitializeParams.Capabilities.Experimental = map[string]any{"x": strings.Repeat("x", mcpserver.MaxSessionBytes)}
	if err := s.Sessions.Create(ctx, big); !errors.Is(err, mcpserver.ErrSessionTooLarge) {
		t.Errorf("Create of a %d-byte record = %v, want ErrSessionTooLarge", mcpserver.MaxSessionBytes, err)
	}
	if n, _ := s.Size(big.ID); n != 0 {
		t.Errorf("a refused Create left %d entries", n)
	}
	sid := newSession(t, s)
	_, before := s.Size(sid)
	err := s.Sessions.Update(ctx, sid, func(sess *mcpserver.Session) {
		sess.State.InitializeParams.ClientInfo = &mcp.Implementation{Name: strings.Repeat("n", mcpserver.MaxSessionBytes)}
	})
	if !errors.Is(err, mcpserver.ErrSessionTooLarge) {
		t.Errorf("Update to a %d-byte record = %v, want ErrSessionTooLarge", mcpserver.MaxSessionBytes, err)
	}
	if _, after := s.Size(sid); after != before {
		t.Errorf("a refused Update changed the session's bytes from %d to %d", before, after)
	}
}

// testSessionGrowthUpdate: updating the log level again and again leaves
// the record's size as it was.
func testSessionGrowthUpdate(t *testing.T, newStores func(t *testing.T, maxBytes int64) Timed) {
	ctx, s := ctxFor(t), newStores(t, 1<<20)
	sid := newSession(t, s)
	n0, b0 := s.Size(sid)
	for i := range sessionRounds {
		level := []mcp.LoggingLevel{"debug", "info"}[i%2] //lint:ignore SA1019 legacy sessions still negotiate logging
		if err := s.Sessions.Update(ctx, sid, func(sess *mcpserver.Session) { sess.State.LogLevel = level }); err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	n, b := s.Size(sid)
	t.Logf("session record: %d entries, %d B; after %d updates %d entries, %d B", n0, b0, sessionRounds, n, b)
	if n != n0 || b > b0+recordSlack {
		t.Errorf("after %d updates the session holds %d entries, %d B; want %d, at most %d B", sessionRounds, n, b, n0, b0+recordSlack)
	}
}

// testSessionGrowthSubscriptions: subscribing to one URI again and again
// costs one subscription; at MaxSubscriptions a new one is refused; and
// unsubscribing frees them.
func testSessionGrowthSubscriptions(t *testing.T, newStores func(t *testing.T, maxBytes int64) Timed) {
	ctx, s := ctxFor(t), newStores(t, 1<<20)
	ss, ok := s.Sessions.(mcpserver.SubscriptionStore)
	if !ok {
		t.Skip("the session store does not implement SubscriptionStore")
	}
	sid := newSession(t, s)
	if err := s.Sessions.Update(ctx, sid, func(sess *mcpserver.Session) { sess.Subscriptions = nil }); err != nil {
		t.Fatalf("Update: %v", err)
	}
	_, b0 := s.Size(sid)
	for range sessionRounds {
		if err := ss.SetSubscription(ctx, sid, "notes://alice/1", true); err != nil {
			t.Fatalf("SetSubscription: %v", err)
		}
	}
	_, b1 := s.Size(sid)
	t.Logf("one URI subscribed %d times: %+d B", sessionRounds, b1-b0)
	if b1-b0 > subscriptionMax {
		t.Errorf("one URI subscribed %d times costs %d B, want at most %d", sessionRounds, b1-b0, subscriptionMax)
	}
	for i := 1; i < mcpserver.MaxSubscriptions; i++ {
		if err := ss.SetSubscription(ctx, sid, fmt.Sprint("notes://alice/n", i), true); err != nil {
			t.Fatalf("subscription %d: %v", i+1, err)
		}
	}
	if err := ss.SetSubscription(ctx, sid, "notes://alice/one-too-many", true); !errors.Is(err, mcpserver.ErrSubscriptionLimit) {
		t.Errorf("subscription %d = %v, want ErrSubscriptionLimit", mcpserver.MaxSubscriptions+1, err)
	}
	_, full := s.Size(sid)
	t.Logf("%d subscriptions: %+d B", mcpserver.MaxSubscriptions, full-b0)
	got, err := s.Sessions.Get(ctx, sid)
	if err != nil || len(got.Subscriptions) != mcpserver.MaxSubscriptions {
		t.Fatalf("Get = %d subscriptions, %v; want %d", len(got.Subscriptions), err, mcpserver.MaxSubscriptions)
	}
	for _, u := range got.Subscriptions {
		if err := ss.SetSubscription(ctx, sid, u, false); err != nil {
			t.Fatalf("unsubscribe: %v", err)
		}
	}
	if _, b := s.Size(sid); b > b0+recordSlack {
		t.Errorf("after unsubscribing everything the session holds %d B, want about %d", b, b0)
	}
	if err := ss.SetSubscription(ctx, newID(), "notes://alice/1", true); !errors.Is(err, mcpserver.ErrNotFound) {
		t.Errorf("SetSubscription of a missing session = %v, want ErrNotFound", err)
	}
}
