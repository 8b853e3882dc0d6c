package mcpserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/remotemcp/remotemcp/internal/ttlcache"
)

// Bounds of the session cache: see sessionCache.
const (
	// sessionChecked is how recently a session must have been seen to
	// exist (and had its lifetime extended) for its cached record to be
	// used.
	sessionChecked = 2 * time.Second
	// sessionFetched is how old a cached record may be.
	sessionFetched = 30 * time.Second
	// maxCachedSessions bounds the cache.
	maxCachedSessions = 10000
)

// methodSessionChanged is the Broadcast that invalidates a session's cached
// record on every replica: its Session field is sessionHash of the ID.
const methodSessionChanged = "remotemcp/session-changed"

// A sessionCache holds the session records this replica served recently, so
// that a legacy request costs no read of its session, only the write of
// its stream, which checks that the session still exists and extends its
// lifetime (StreamWrite.Session).
//
// What may be stale, and for how long:
//   - The subject, against which every request is checked, never changes.
//   - A session deleted (or expired) is noticed by the write of the next
//     request's stream, which then answers 404 instead of the response
//     (but the request did run). Sooner, usually: a DELETE evicts the
//     record here and, through the Broadcaster, on every replica, within
//     pub/sub latency; and a record is used only if the session was seen
//     to exist less than sessionChecked (2s) ago. So a deleted session
//     runs at most the requests that reach a replica within 2s of the
//     DELETE while that replica missed the invalidation (the pub/sub
//     connection was being re-established, or the replica's queue of
//     broadcasts overflowed or lagged).
//
// Nothing but a read or write of the session itself renews the 2s: a
// Broadcaster's claim that it received every invalidation is not trusted,
// since it cannot prove what its reconnects and full buffers dropped, nor
// that the Handler applied what it received (and on a Redis Cluster a PONG
// from one node says nothing of messages published on another). So the
// first request of a session idle for 2s or more costs one more round
// trip (the read of its record).
//   - The rest of the record (the log level, the subscriptions) changes by
//     requests that evict it in the same way, and is read again at least
//     every sessionFetched (30s).
//
// The cache is used only while the Handler's broadcast subscription, which
// carries the invalidations, is up; it is emptied whenever that
// subscription starts or ends. Entries are keyed by the SHA-256 of the
// session ID, which is also what invalidations carry. They are kept in a
// ttlcache, each for sessionFetched after it was read, at most
// maxCachedSessions of them, the one read longest ago going first (a
// session dropped pays one more read). The 2s trust that stream writes
// renew, and the invalidations, are the Handler's own: they stay here,
// under one lock with every write of the cache.
type sessionCache struct {
	now func() time.Time

	mu   sync.Mutex
	live bool // the invalidations are received
	gen  uint64
	m    *ttlcache.Cache[string, *cachedSession]
}

// A cachedSession is a session record and when the session was last seen to
// exist. It changes only under sessionCache.mu.
type cachedSession struct {
	sess    *Session
	checked time.Time
}

func newSessionCache() *sessionCache {
	return &sessionCache{now: time.Now, m: ttlcache.New[string, *cachedSession](maxCachedSessions)}
}

// sessionHash names a session in the cache and in invalidations.
func sessionHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// get returns a shallow copy of the cached record of id, if it is fresh.
// Its pointer fields are shared: read-only.
func (c *sessionCache) get(id string) (*Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		return nil, false
	}
	now := c.now()
	e, ok := c.m.Get(sessionHash(id), now)
	if !ok || now.Sub(e.checked) >= sessionChecked {
		return nil, false
	}
	s := *e.sess
	return &s, true
}

// begin returns the generation to pass to put: a record read after begin
// is cached only if no invalidation came in between.
func (c *sessionCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches a record just read from the store (which extended the
// session's lifetime), unless an invalidation came since gen.
func (c *sessionCache) put(sess *Session, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.gen != gen {
		return
	}
	now := c.now()
	s := *sess
	c.m.Set(sessionHash(sess.ID), &cachedSession{sess: &s, checked: now}, now.Add(sessionFetched), now)
}

// checked records that the session was just seen to exist.
func (c *sessionCache) checked(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if e, ok := c.m.Get(sessionHash(id), now); ok {
		e.checked = now
	}
}

// forget evicts the record of the session whose sessionHash is hash.
func (c *sessionCache) forget(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.m.Delete(hash)
}

// setLive empties the cache, and uses it from now on only if live: the
// invalidations are received.
func (c *sessionCache) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = live
	c.m.Clear()
}

// session returns the session id, from the cache if it is fresh there,
// else from the store (which extends its lifetime).
func (h *Handler) session(ctx context.Context, id string) (*Session, error) {
	if s, ok := h.cache.get(id); ok {
		return s, nil
	}
	gen := h.cache.begin()
	s, err := h.stores.Sessions.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	h.cache.put(s, gen)
	return s, nil
}

// sessionChanged evicts the cached record of session id here and, through
// the Broadcaster, on every replica.
func (h *Handler) sessionChanged(ctx context.Context, id string) {
	hash := sessionHash(id)
	h.cache.forget(hash)
	if err := h.stores.Broadcaster.Publish(ctx, Broadcast{Method: methodSessionChanged, Session: hash}); err != nil {
		h.log.Warn("publish session change", "session", shortHash(id), "error", err)
	}
}
