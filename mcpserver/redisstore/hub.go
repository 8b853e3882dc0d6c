package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A hub is the one pub/sub connection of a replica's stores. When the
// stores start, it subscribes, for good, to the wake channel, the broadcast
// channel and the inbox pattern (PSUBSCRIBE <p>inbox:*), and it routes what
// arrives in process: a wake to the event reads waiting on that stream, a
// broadcast to every Broadcaster subscriber, an inbox message to the
// listener of its channel on this replica, if any. A listener or a
// subscriber thus costs no subscription of its own. (A connection per
// listener would cost a TCP, perhaps TLS, handshake per legacy tools/call;
// blocking XREADs would hold a pooled connection per open SSE stream and
// exhaust the pool.) The price is that every replica receives every inbox
// message: they are rare (a client's answer to a server-to-client request,
// a cancellation).
//
// go-redis reconnects a lost connection and subscribes it again by itself;
// what is published meanwhile is lost (pub/sub is at most once), which is
// why every waiting event read looks again once the wake channel is
// subscribed again. The connection is up once Redis has confirmed all
// three subscriptions, and down from a receive error until then.
type hub struct {
	ps                     *redis.PubSub
	log                    *slog.Logger
	wake, broadcast, inbox string

	ctx    context.Context // ends with close
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader goroutine ends

	mu        sync.Mutex
	closed    bool
	up        chan struct{}                         // closed while the connection has every subscription
	lost      error                                 // why the connection went down, until it is up again
	nextPing  uint64                                // for unique PING payloads
	pings     map[string]*barrier                   // subscriptions waiting for their PONG, by payload
	watchers  map[string]map[chan struct{}]struct{} // event reads waiting, by stream key
	listeners map[string]*sub                       // inbox listeners, by channel
	subs      map[*sub]struct{}                     // Broadcaster subscribers
}

// subscriptions is how many subscriptions the connection holds when up.
const subscriptions = 3

// A sub is one local receiver of a channel: an inbox listener or a
// Broadcaster subscriber.
type sub struct {
	deliver func(payload string) // called with hub.mu held: must not block
	end     func()               // called once, with hub.mu held, when the sub ends
}

// A barrier adds a subscriber once Redis has answered a PING sent after
// the caller asked: the PONG arrives in order with the channel's messages,
// so the subscriber receives exactly what is published after that.
type barrier struct {
	add  func()     // run with hub.mu held when the PONG arrives
	done chan error // receives nil once added, or why not
}

// newHub starts the pub/sub connection of one set of stores.
func newHub(rdb redis.UniversalClient, log *slog.Logger, wake, broadcast, inbox string) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{
		ps: rdb.Subscribe(ctx), log: log, wake: wake, broadcast: broadcast, inbox: inbox,
		ctx: ctx, cancel: cancel, done: make(chan struct{}), up: make(chan struct{}),
		pings: map[string]*barrier{}, watchers: map[string]map[chan struct{}]struct{}{},
		listeners: map[string]*sub{}, subs: map[*sub]struct{}{},
	}
	go h.run()
	return h
}

// run subscribes, then receives everything of the connection until close.
func (h *hub) run() {
	defer close(h.done)
	// go-redis remembers the channels and the pattern even if these fail,
	// and subscribes them again on every reconnect.
	_ = h.ps.Subscribe(h.ctx, h.wake, h.broadcast)
	_ = h.ps.PSubscribe(h.ctx, h.inbox)
	var failing bool
	backoff := 50 * time.Millisecond
	for {
		msg, err := h.ps.Receive(h.ctx)
		if err != nil {
			if h.ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			h.down(err)
			if !failing {
				h.log.Warn("redisstore: pub/sub connection lost; reconnecting", "error", err)
				failing = true
			}
			select {
			case <-time.After(backoff):
			case <-h.ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		if failing {
			h.log.Info("redisstore: pub/sub connection restored")
			failing, backoff = false, 50*time.Millisecond
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			h.subscribed(m)
		case *redis.Pong:
			h.pong(m.Payload)
		case *redis.Message:
			h.dispatch(m)
		}
	}
}

// down records that the connection is lost, and fails the subscriptions
// waiting for a PONG, which will not come.
func (h *hub) down(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.up:
		h.up = make(chan struct{})
	default:
	}
	h.lost = err
	for tok, b := range h.pings {
		delete(h.pings, tok)
		b.done <- err
	}
}

// subscribed handles Redis' confirmation of one subscription.
func (h *hub) subscribed(m *redis.Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.Kind == "subscribe" && m.Channel == h.wake {
		// First subscription or resubscription after a reconnect: changes
		// may have been missed, so every waiting read looks again.
		for _, ws := range h.watchers {
			for w := range ws {
				notify(w)
			}
		}
	}
	if m.Count == subscriptions {
		select {
		case <-h.up:
		default:
			close(h.up)
			h.lost = nil
		}
	}
}

func (h *hub) pong(payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.pings[payload]; b != nil {
		delete(h.pings, payload)
		b.add()
		b.done <- nil
	}
}

func (h *hub) dispatch(m *redis.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case m.Pattern == h.inbox:
		if s := h.listeners[m.Channel]; s != nil {
			s.deliver(m.Payload)
		}
	case m.Pattern != "":
	case m.Channel == h.wake:
		for w := range h.watchers[m.Payload] {
			notify(w)
		}
	case m.Channel == h.broadcast:
		for s := range h.subs {
			s.deliver(m.Payload)
		}
	}
}

func notify(w chan struct{}) {
	select {
	case w <- struct{}{}:
	default:
	}
}

// errBusy is returned by listen for a channel that has a listener on this
// replica.
var errBusy = errors.New("channel already has a listener")

// ready returns nil once the connection is up: at once if it is, with an
// error at once if it went down (what is published meanwhile would be
// lost), else (the stores just started) when Redis confirms the
// subscriptions, ctx ends, or confirmTimeout passes.
func (h *hub) ready(ctx context.Context) error {
	h.mu.Lock()
	closed, up, lost := h.closed, h.up, h.lost
	h.mu.Unlock()
	if closed {
		return errClosed
	}
	select {
	case <-up:
		return nil
	default:
	}
	if lost != nil {
		return fmt.Errorf("pub/sub connection down: %w", lost)
	}
	t := time.NewTimer(confirmTimeout)
	defer t.Stop()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("pub/sub subscriptions not confirmed")
	case <-h.ctx.Done():
		return errClosed
	}
}

// subscribe adds s to the Broadcaster subscribers once Redis has answered
// a PING sent after the call: s receives what is published from then on.
// It fails if the connection is down, and when ctx ends first.
func (h *hub) subscribe(ctx context.Context, s *sub) error {
	if err := h.ready(ctx); err != nil {
		return err
	}
	b := &barrier{add: func() { h.subs[s] = struct{}{} }, done: make(chan error, 1)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errClosed
	}
	h.nextPing++
	tok := "redisstore:" + strconv.FormatUint(h.nextPing, 10)
	h.pings[tok] = b
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	err := h.ps.Ping(ctx, tok)
	if err == nil {
		select {
		case err = <-b.done:
			return err
		case <-ctx.Done():
			err = ctx.Err()
		case <-h.ctx.Done():
			err = errClosed
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pings[tok] == b {
		delete(h.pings, tok)
		return err
	}
	return <-b.done // answered (or failed) meanwhile
}

// unsubscribe removes the Broadcaster subscriber s.
func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		s.end()
	}
}

// listen makes s the listener of the inbox channel name on this replica:
// from then on it receives what is published on name. It fails if the
// channel has a listener here, or if the connection is down.
func (h *hub) listen(ctx context.Context, name string, s *sub) error {
	if err := h.ready(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errClosed
	}
	if h.listeners[name] != nil {
		return errBusy
	}
	h.listeners[name] = s
	return nil
}

// unlisten removes the listener s of the inbox channel name.
func (h *hub) unlisten(name string, s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.listeners[name] == s {
		delete(h.listeners, name)
		s.end()
	}
}

// watch returns a channel that receives a value whenever the event stream
// key may have changed, on any replica, until unwatch is called. It needs
// no confirmation: a read that misses a change while the wake channel is
// not subscribed looks again when it is.
func (h *hub) watch(key string) (changed <-chan struct{}, unwatch func(), err error) {
	w := make(chan struct{}, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, errClosed
	}
	ws := h.watchers[key]
	if ws == nil {
		ws = map[chan struct{}]struct{}{}
		h.watchers[key] = ws
	}
	ws[w] = struct{}{}
	return w, func() {
		h.mu.Lock()
		delete(ws, w)
		if cur, ok := h.watchers[key]; ok && len(cur) == 0 {
			delete(h.watchers, key)
		}
		h.mu.Unlock()
	}, nil
}

// changed wakes the reads of this replica that wait on the stream key; the
// wake channel tells the other replicas.
func (h *hub) changed(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers[key] {
		notify(w)
	}
}

// close ends the connection, every listener and subscriber, and wakes the
// waiting reads. It is idempotent.
func (h *hub) close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.cancel()
	for tok, b := range h.pings {
		delete(h.pings, tok)
		b.done <- errClosed
	}
	for s := range h.subs {
		delete(h.subs, s)
		s.end()
	}
	for name, s := range h.listeners {
		delete(h.listeners, name)
		s.end()
	}
	for _, ws := range h.watchers {
		for w := range ws {
			notify(w)
		}
	}
	h.mu.Unlock()
	err := h.ps.Close()
	<-h.done
	if errors.Is(err, redis.ErrClosed) {
		err = nil
	}
	return err
}
