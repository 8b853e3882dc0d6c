package redisstore

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/mcpserver"
)

// Broadcaster is a Redis mcpserver.Broadcaster: one pub/sub channel with
// JSON messages, received once per replica and fanned out to its
// subscribers.
type Broadcaster struct {
	rdb  redis.UniversalClient
	keys keys
	hub  *hub
}

var _ mcpserver.Broadcaster = (*Broadcaster)(nil)

// broadcastBuffer is how many broadcasts a subscriber holds before further
// ones are dropped rather than stalling every other subscriber.
const broadcastBuffer = 64

// Publish implements mcpserver.Broadcaster with one PUBLISH.
func (b *Broadcaster) Publish(ctx context.Context, m mcpserver.Broadcast) (err error) {
	defer wrapf(&err, "publish")
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return b.rdb.Publish(ctx, b.keys.broadcast(), data).Err()
}

// Subscribe implements mcpserver.Broadcaster. It returns once Redis has
// confirmed that this replica receives what is published from then on (a
// PING on the shared pub/sub connection, which always has the broadcast
// channel); stop closes msgs. Broadcasts published while the pub/sub
// connection reconnects are lost.
func (b *Broadcaster) Subscribe(ctx context.Context) (msgs <-chan mcpserver.Broadcast, stop func(), err error) {
	defer wrapf(&err, "subscribe")
	ch := make(chan mcpserver.Broadcast, broadcastBuffer)
	s := &sub{
		deliver: func(payload string) {
			var m mcpserver.Broadcast
			if json.Unmarshal([]byte(payload), &m) != nil {
				return
			}
			select {
			case ch <- m:
			default:
			}
		},
		end: func() { close(ch) },
	}
	if err := b.hub.subscribe(ctx, s); err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return ch, func() { once.Do(func() { b.hub.unsubscribe(s) }) }, nil
}
