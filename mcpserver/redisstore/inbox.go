package redisstore

import (
	"context"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/mcpserver"
)

// Inbox is a Redis mcpserver.Inbox: one pub/sub channel per (session, key).
// Every replica receives every inbox channel through one pattern
// subscription (see hub) and hands a message to its listener there, if it
// has one, so that a message reaches the listener on whichever replica it
// waits, and listening costs no round trip.
type Inbox struct {
	rdb  redis.UniversalClient
	keys keys
	hub  *hub
	log  *slog.Logger
}

var _ mcpserver.Inbox = (*Inbox)(nil)

// inboxBuffer is how many undelivered messages a listener holds before
// further ones are dropped; a listener expects one.
const inboxBuffer = 8

// Deliver implements mcpserver.Inbox with one PUBLISH. Every replica
// receives it, so its receiver count tells only whether no replica is
// subscribed at all (ErrNotFound): a message for a key nobody listens to is
// otherwise dropped by the replicas, and Deliver returns nil.
func (b *Inbox) Deliver(ctx context.Context, sessionID, key string, msg []byte) (err error) {
	defer wrapf(&err, "deliver")
	n, err := b.rdb.Publish(ctx, b.keys.inbox(sessionID, key), msg).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		return mcpserver.ErrNotFound
	}
	return nil
}

// Listen implements mcpserver.Inbox, without a round trip: this replica
// receives the inbox pattern from the start (Listen waits for that only
// while the stores start, and fails while the pub/sub connection is down),
// so that a Deliver after it, from any replica, is received; stop closes
// msgs. A second Listen on the same key fails on the same replica
// only: two replicas listening on one key both receive its messages.
func (b *Inbox) Listen(ctx context.Context, sessionID, key string) (msgs <-chan []byte, stop func(), err error) {
	defer wrapf(&err, "listen")
	ch := make(chan []byte, inboxBuffer)
	s := &sub{
		deliver: func(payload string) {
			select {
			case ch <- []byte(payload):
			default:
				b.log.Warn("redisstore: inbox listener is not receiving; message dropped")
			}
		},
		end: func() { close(ch) },
	}
	name := b.keys.inbox(sessionID, key)
	if err := b.hub.listen(ctx, name, s); err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return ch, func() { once.Do(func() { b.hub.unlisten(name, s) }) }, nil
}
