package mcpserver

import (
	"strconv"
	"testing"
	"time"
)

// TestSessionCacheEvictsOldest checks that a put into a cache full of fresh
// entries keeps what it puts and the bound, dropping the record read
// longest ago (one entry, found without a scan of the cache under its
// lock), and that a full cache still takes many more puts.
func TestSessionCacheEvictsOldest(t *testing.T) {
	now := time.Unix(1e9, 0)
	c := newSessionCache()
	c.now = func() time.Time { return now }
	c.setLive(true)
	for i := range maxCachedSessions {
		c.put(&Session{ID: strconv.Itoa(i)}, c.begin())
	}
	if got := c.m.Len(); got != maxCachedSessions {
		t.Fatalf("cache of %d entries after %d puts, want %d", got, maxCachedSessions, maxCachedSessions)
	}
	c.put(&Session{ID: "new"}, c.begin())
	if got := c.m.Len(); got != maxCachedSessions {
		t.Errorf("cache of %d entries after a put into a full cache, want %d", got, maxCachedSessions)
	}
	if _, ok := c.get("new"); !ok {
		t.Error("the entry put into a full cache is missing")
	}
	if _, ok := c.get("0"); ok {
		t.Error("the oldest entry is still cached after a put into a full cache")
	}
	for i := range maxCachedSessions / 2 {
		c.put(&Session{ID: "more" + strconv.Itoa(i)}, c.begin())
	}
	if got := c.m.Len(); got != maxCachedSessions {
		t.Errorf("cache of %d entries after more puts, want %d", got, maxCachedSessions)
	}
	if _, ok := c.get("new"); !ok {
		t.Error("a recent entry is missing after more puts")
	}
}
