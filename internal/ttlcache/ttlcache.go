// Package ttlcache is the one bounded cache with per-entry expiry that the
// server's packages keep their remembered answers in: verified tokens,
// introspection answers, revocation answers, client metadata documents,
// session records.
//
// It is a map in front of a list, written here rather than taken from a
// library because what the callers need is small and precise: each entry
// expires at its own time, chosen by the caller (a token's expiry, a
// document's HTTP freshness); the bound is exact and applied at once, the
// oldest entry going first, as the callers document; time is the caller's
// clock, so that tests drive expiry with a fake one; and a hit, on the
// path of every request, costs a read lock and a map look-up, no
// allocation. Of the libraries weighed, otter (per-entry expiry) admits
// and evicts by frequency, applies its bound approximately and
// asynchronously, and costs about three times as much per hit; the
// expirable LRU of hashicorp/golang-lru has one TTL per cache and reads
// the wall clock.
package ttlcache

import (
	"sync"
	"time"
)

// A Cache maps keys to values, each until its own deadline, and holds at
// most a fixed number of entries. Entries are kept in the order they were
// last set: setting one drops the expired entries at the old end, then,
// while the cache is full, the oldest ones. Reads never reorder, so that
// they share a read lock.
//
// Time is given by the caller: the methods that need it take now, so that
// the caller's clock (a test's fake one) decides expiry, and a caller that
// has read its clock does not read it again. An entry is live while now is
// before its deadline.
//
// A Cache is safe for concurrent use. Its zero value is not usable: call
// New.
type Cache[K comparable, V any] struct {
	mu  sync.RWMutex
	max int
	m   map[K]*entry[K, V]
	// ring is the sentinel of a circular list of the entries: ring.next
	// is the oldest, ring.prev the newest.
	ring entry[K, V]
}

type entry[K comparable, V any] struct {
	key        K
	val        V
	until      time.Time
	prev, next *entry[K, V]
}

// New returns an empty cache of at most max entries. It panics if max is
// not positive: a caller that wants no cache keeps none.
func New[K comparable, V any](max int) *Cache[K, V] {
	if max <= 0 {
		panic("ttlcache: the bound must be positive")
	}
	c := &Cache[K, V]{max: max, m: make(map[K]*entry[K, V])}
	c.ring.prev, c.ring.next = &c.ring, &c.ring
	return c
}

// Get returns the value of key if it is live at now. It neither reorders
// nor drops entries.
func (c *Cache[K, V]) Get(key K, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	if ok && now.Before(e.until) {
		v := e.val
		c.mu.RUnlock()
		return v, true
	}
	c.mu.RUnlock()
	var zero V
	return zero, false
}

// Set makes val the value of key until the deadline until, replacing any
// entry of key and making it the newest. An until not after now removes
// key's entry instead: what has expired is not kept.
func (c *Cache[K, V]) Set(key K, val V, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(key, val, until, now)
}

// Add sets key as Set does, but only if key has no live entry at now. It
// reports whether it did.
func (c *Cache[K, V]) Add(key K, val V, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok && now.Before(e.until) {
		return false
	}
	c.set(key, val, until, now)
	return true
}

// set is Set with c.mu held.
func (c *Cache[K, V]) set(key K, val V, until, now time.Time) {
	e := c.m[key]
	if e != nil {
		c.unlink(e)
		delete(c.m, key)
	}
	if !now.Before(until) {
		return
	}
	// Make room: what expired at the old end, then the oldest beyond the
	// bound. Each entry is dropped once, so a Set costs O(1) amortized.
	for o := c.ring.next; o != &c.ring && (len(c.m) >= c.max || !now.Before(o.until)); o = c.ring.next {
		c.unlink(o)
		delete(c.m, o.key)
	}
	if e == nil {
		e = &entry[K, V]{key: key}
	}
	e.val, e.until = val, until
	e.prev, e.next = c.ring.prev, &c.ring
	c.ring.prev.next = e
	c.ring.prev = e
	c.m[key] = e
}

// unlink takes e out of the list (not out of the map). c.mu is held.
func (c *Cache[K, V]) unlink(e *entry[K, V]) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

// Delete removes key's entry, if any.
func (c *Cache[K, V]) Delete(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.unlink(e)
		delete(c.m, key)
	}
}

// Clear removes every entry.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.ring.prev, c.ring.next = &c.ring, &c.ring
}

// Len returns the number of entries held, expired ones not yet dropped
// included.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Live returns the number of entries that have not expired at now. It
// reads every entry: for an occasional count (a metrics scrape), not the
// request path.
func (c *Cache[K, V]) Live(now time.Time) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, e := range c.m {
		if now.Before(e.until) {
			n++
		}
	}
	return n
}
