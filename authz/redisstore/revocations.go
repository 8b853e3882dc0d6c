package redisstore

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/remotemcp/remotemcp/internal/ttlcache"
)

// Revocations announced on the channel are kept in a local cache, so that
// GrantRevoked, on the path of every MCP request, costs no round trip.
//
// The cache holds answers, revoked or not, per grant ID. A "revoked"
// answer can be kept whatever happens: revocation is sticky. A "not
// revoked" answer is true only as long as no announcement can have been
// missed, so it is cached only while the subscription is confirmed (the
// server acknowledged SUBSCRIBE and answers pings), and only if it was read
// from Redis after that confirmation: a revocation that came later is
// published after the subscription, and arrives. Each time the
// subscription goes down or comes up again, the cache is emptied and its
// epoch moves on, so that a read that spans the change is not cached.
// While the subscription is down, every miss is an EXISTS.
//
// Entries also expire (Options.RevocationCacheTTL), which bounds how long a
// lost announcement that did not break the subscription can go unnoticed
// (on Redis Cluster, messages cross the cluster bus to the subscriber's
// node, and a bus partition can drop them silently); and the cache is
// bounded (Options.RevocationCacheSize), oldest entries first. Dropping an
// entry is always safe: a miss asks Redis.

// An answerCache maps grant IDs to cached GrantRevoked answers, in a
// ttlcache (expiry and bound), with the state of the subscription that
// decides which answers may be kept. It is safe for concurrent use.
type answerCache struct {
	ttl     time.Duration
	now     func() time.Time
	answers *ttlcache.Cache[string, bool] // revoked or not, by grant ID

	// mu orders the changes of the subscription's state with the writes
	// of answers, so that no answer of an old epoch lands after the
	// cache was emptied for a new one.
	mu      sync.Mutex
	healthy bool   // the subscription is confirmed
	epoch   uint64 // moves on with every change of healthy
	// changed is closed, and replaced, whenever healthy changes or a
	// revocation is recorded, so that a test can wait for the subscription
	// instead of polling it.
	changed chan struct{}
}

func newAnswerCache(max int, ttl time.Duration, now func() time.Time) *answerCache {
	return &answerCache{ttl: ttl, now: now, answers: ttlcache.New[string, bool](max), changed: make(chan struct{})}
}

// changes returns a channel closed at the next change of the subscription's
// state or the next revocation recorded.
func (c *answerCache) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// signal wakes whoever waits on changes; c.mu is held.
func (c *answerCache) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// get returns the cached answer for a grant, if any.
func (c *answerCache) get(id string) (revoked, ok bool) {
	return c.answers.Get(id, c.now())
}

// state returns the epoch, and whether the subscription is confirmed.
func (c *answerCache) state() (epoch uint64, healthy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch, c.healthy
}

// setHealthy records a change of the subscription's state, and empties the
// cache if it changed. It reports whether it changed.
func (c *answerCache) setHealthy(healthy bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.healthy == healthy {
		return false
	}
	c.healthy = healthy
	c.epoch++
	c.answers.Clear()
	c.signal()
	return true
}

// revoked records a revocation.
func (c *answerCache) revoked(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.answers.Set(id, true, now.Add(c.ttl), now)
	c.signal()
}

// read records what Redis answered for a grant, read at epoch. A "not
// revoked" answer is kept only if the subscription was confirmed then and
// still is, and it never replaces an answer that came meanwhile (an
// announcement).
func (c *answerCache) read(id string, revoked bool, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !revoked && (!c.healthy || c.epoch != epoch) {
		return
	}
	now := c.now()
	c.answers.Add(id, revoked, now.Add(c.ttl), now)
}

// len returns the number of entries; for tests.
func (c *answerCache) len() int {
	return c.answers.Len()
}

// Subscription timing.
const (
	// pingEvery is how long the subscription may be silent before it is
	// pinged; a ping unanswered for as long again takes it down. So a
	// partition (a connection that hangs) is noticed within twice that.
	pingEvery = time.Second
	// resubscribeMin and resubscribeMax bound the wait between attempts
	// to subscribe again.
	resubscribeMin = 50 * time.Millisecond
	resubscribeMax = 2 * time.Second
)

// watch keeps the subscription to the revocation channel up until s.ctx is
// done, feeding the cache.
func (s *Store) watch() {
	defer close(s.done)
	wait := resubscribeMin
	for s.ctx.Err() == nil {
		ps := s.rdb.Subscribe(s.ctx, s.channel)
		s.mu.Lock()
		closed := s.closed
		s.ps = ps
		s.mu.Unlock()
		if closed {
			_ = ps.Close()
			break
		}
		confirmed, err := s.receive(ps)
		_ = ps.Close()
		// After Close (s.ctx done) the subscription was ended, not lost:
		// its connection closed under the read, which is no news.
		if s.cache.setHealthy(false) && s.ctx.Err() == nil {
			s.log.Warn("redisstore: revocation subscription lost; GrantRevoked asks Redis until it is back", "err", err)
		}
		if errors.Is(err, redis.ErrClosed) && s.ctx.Err() == nil {
			s.log.Warn("redisstore: redis client closed; revocation subscription ended")
			break
		}
		if confirmed {
			wait = resubscribeMin
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, resubscribeMax)
	}
}

// receive reads the subscription until it fails, and reports whether it
// was confirmed.
func (s *Store) receive(ps *redis.PubSub) (confirmed bool, err error) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(s.ctx, s.pingEvery)
		if err != nil {
			var ne net.Error
			if !pinged && errors.As(err, &ne) && ne.Timeout() && s.ctx.Err() == nil {
				if err := ps.Ping(s.ctx); err != nil {
					return confirmed, err
				}
				pinged = true
				continue
			}
			return confirmed, err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Channel != s.channel {
				continue
			}
			if m.Kind != "subscribe" {
				return confirmed, errors.New("unsubscribed")
			}
			if confirmed {
				// go-redis subscribed again on a new connection (a
				// maintenance handoff): announcements may have been
				// lost in between, so start a new epoch.
				s.cache.setHealthy(false)
			}
			confirmed = true
			if s.cache.setHealthy(true) {
				s.log.Info("redisstore: revocation subscription confirmed")
			}
		case *redis.Message:
			if m.Channel == s.channel {
				s.cache.revoked(m.Payload)
			}
		}
	}
}

// subscribed reports whether the revocation subscription is confirmed; for
// tests.
func (s *Store) subscribed() bool {
	_, ok := s.cache.state()
	return ok
}

// Close stops the revocation subscription and waits for it to end. It
// does not close the Redis client. After Close, GrantRevoked asks Redis
// every time.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	ps := s.ps
	s.mu.Unlock()
	s.cancel()
	if ps != nil {
		_ = ps.Close() // unblocks receive; closing twice is harmless
	}
	<-s.done
	return nil
}

// checkRevoked asks Redis whether a grant is revoked, and caches the answer.
func (s *Store) checkRevoked(ctx context.Context, id string) (bool, error) {
	epoch, _ := s.cache.state()
	n, err := s.rdb.Exists(ctx, s.grantKeys(id).revoked).Result()
	if err != nil {
		return false, err
	}
	s.cache.read(id, n == 1, epoch)
	return n == 1, nil
}
