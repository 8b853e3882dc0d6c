package redisstore

import (
	"context"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/mcpserver"
)

// Inbox is a Redis mcpserver.Inbox: one pub/sub channel per (session, key),
// so that a message reaches the listener on whichever replica it waits.
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

// Deliver implements mcpserver.Inbox with one PUBLISH, whose receiver count
// tells whether anybody listens. On Redis Cluster that count covers only
// the node that took the PUBLISH, so Deliver may report ErrNotFound for a
// message that did reach a listener connected to another node.
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

// Listen implements mcpserver.Inbox. It returns once Redis has confirmed
// the subscription, so that a Deliver after it, from any replica, is
// received; stop returns once Redis has confirmed the unsubscription and
// closes msgs. A second Listen on the same key fails on the same replica
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
	if err := b.hub.subscribe(ctx, b.keys.inbox(sessionID, key), s, true); err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return ch, func() { once.Do(func() { b.hub.unsubscribe(s) }) }, nil
}
