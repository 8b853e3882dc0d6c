package mcpserver

import (
	"strconv"
	"testing"
	"time"
)

// TestSessionCacheEvictsHalf checks that a put into a cache full of fresh
// entries leaves room for many more puts (each put after the first would
// otherwise scan the whole cache under its lock), and keeps what it puts.
func TestSessionCacheEvictsHalf(t *testing.T) {
	now := time.Unix(1e9, 0)
	c := newSessionCache()
	c.now = func() time.Time { return now }
	c.setLive(true)
	for i := range maxCachedSessions {
		c.put(&Session{ID: strconv.Itoa(i)}, c.begin())
	}
	if got := len(c.m); got != maxCachedSessions {
		t.Fatalf("cache of %d entries after %d puts, want %d", got, maxCachedSessions, maxCachedSessions)
	}
	c.put(&Session{ID: "new"}, c.begin())
	if got, want := len(c.m), maxCachedSessions/2; got != want {
		t.Errorf("cache of %d entries after a put into a full cache, want %d", got, want)
	}
	if _, ok := c.get("new"); !ok {
		t.Error("the entry put into a full cache is missing")
	}
}
