package redisstore

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A hub multiplexes every pub/sub subscription of one set of stores over a
// single Redis connection, so that a replica holds one pub/sub connection
// however many Inbox listeners, Broadcaster subscribers and waiting event
// reads it serves. (A connection per listener would cost a TCP, perhaps
// TLS, handshake per legacy tools/call; blocking XREADs would hold a pooled
// connection per open SSE stream and exhaust the pool.)
//
// Subscribing returns once Redis has confirmed it: a SUBSCRIBE for a
// channel the connection does not have yet, else a PING with a unique
// payload. Either answer arrives in order with the channel's messages, so a
// new subscriber receives exactly what is published after its call
// returns. Unsubscribing the last subscriber of a channel waits for Redis
// too, so that a PUBLISH after it counts no receiver.
//
// Each SUBSCRIBE or UNSUBSCRIBE of a channel runs in its own goroutine,
// holding the channel's op lock from the command to its confirmation (at
// most confirmTimeout), so that operations on one channel stay in order
// while a caller whose context ends can leave: an abandoned subscription
// undoes itself when its confirmation arrives.
//
// Two subscriptions are kept for good once made: the wake channel, and the
// inbox pattern (PSUBSCRIBE <p>inbox:*), which receives the message of
// every Inbox key of every session; the hub hands each to the listener of
// its channel on this replica, if any. An Inbox listener thus costs no
// round trip (but the first on the replica), at the price of every replica
// receiving every inbox message: they are rare (a client's answer to a
// server-to-client request, a cancellation).
//
// go-redis reconnects the connection and resubscribes its channels and
// patterns by itself; what is published meanwhile is lost (pub/sub is at
// most once), which is why every waiting event read looks again when the
// wake channel is resubscribed.
type hub struct {
	rdb   redis.UniversalClient
	log   *slog.Logger
	wake  string // the channel announcing event stream changes
	inbox string // the pattern of every inbox channel

	ctx    context.Context // ends with close
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	ps        *redis.PubSub // nil until first use
	done      chan struct{} // closed when the reader goroutine ends
	chans     map[string]*hubChan
	pings     map[string]*pending
	nextPing  uint64
	watchers  map[string]map[chan struct{}]struct{} // event reads waiting, by stream key
	listeners map[string]*sub                       // inbox listeners, by channel
	joining   map[string]chan struct{}              // closed when the pending permanent subscription settles
}

// A hubChan is the state of one channel, or pattern.
type hubChan struct {
	name    string
	pattern bool       // PSUBSCRIBE name
	op      sync.Mutex // held from a SUBSCRIBE or UNSUBSCRIBE to its confirmation

	// Guarded by hub.mu.
	users   int  // subscribers, pending or active; the entry goes at 0
	live    bool // subscribed on the server
	subs    map[*sub]struct{}
	pending *pending // the confirmation the holder of op waits for
}

// A sub is one local subscriber of a channel.
type sub struct {
	deliver func(payload string) // called with hub.mu held: must not block
	end     func()               // called once, with hub.mu held, when an active sub ends
	c       *hubChan
	state   subState // guarded by hub.mu
}

type subState int

const (
	subPending   subState = iota // waiting for Redis
	subActive                    // in c.subs
	subAbandoned                 // its caller left before Redis confirmed
	subEnded                     // stopped, failed or closed
)

// A pending operation waits for Redis to confirm it.
type pending struct {
	kind     string // the confirmation: "subscribe", "psubscribe", "unsubscribe" or "pong"
	activate func() // run with hub.mu held when the confirmation arrives
	done     chan error
}

func newPending(kind string, activate func()) *pending {
	return &pending{kind: kind, activate: activate, done: make(chan error, 1)}
}

func newHub(rdb redis.UniversalClient, log *slog.Logger, wake, inbox string) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{
		rdb: rdb, log: log, wake: wake, inbox: inbox, ctx: ctx, cancel: cancel,
		chans: map[string]*hubChan{}, pings: map[string]*pending{}, watchers: map[string]map[chan struct{}]struct{}{},
		listeners: map[string]*sub{}, joining: map[string]chan struct{}{},
	}
}

// startLocked opens the pub/sub connection and its reader on first use.
func (h *hub) startLocked() error {
	if h.closed {
		return errClosed
	}
	if h.ps == nil {
		h.ps = h.rdb.Subscribe(h.ctx) // no channels: it connects on first use
		h.done = make(chan struct{})
		go h.read(h.ps, h.done)
	}
	return nil
}

// read receives everything of the connection until close.
func (h *hub) read(ps *redis.PubSub, done chan struct{}) {
	defer close(done)
	var failing bool
	backoff := 50 * time.Millisecond
	for {
		msg, err := ps.Receive(h.ctx)
		if err != nil {
			if h.ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			h.lost(err)
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
			h.confirmed(m.Kind, m.Channel)
		case *redis.Pong:
			h.confirmed("pong", m.Payload)
		case *redis.Message:
			if m.Pattern != "" {
				h.dispatchInbox(m.Pattern, m.Channel, m.Payload)
			} else {
				h.dispatch(m.Channel, m.Payload)
			}
		}
	}
}

// lost settles what a broken connection will never confirm. A (P)SUBSCRIBE
// still pending is confirmed by go-redis' resubscription; an UNSUBSCRIBE is
// done, since the new connection does not have the channel; a PING is lost.
func (h *hub) lost(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.chans {
		if p := c.pending; p != nil && (p.kind == "unsubscribe" || p.kind == "punsubscribe") {
			c.pending = nil
			p.done <- nil
		}
	}
	for tok, p := range h.pings {
		delete(h.pings, tok)
		p.done <- err
	}
}

func (h *hub) confirmed(kind, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if kind == "pong" {
		if p := h.pings[name]; p != nil {
			delete(h.pings, name)
			p.activate()
			p.done <- nil
		}
		return
	}
	if kind == "subscribe" && name == h.wake {
		// First subscription or resubscription after a reconnect: changes
		// may have been missed, so every waiting read looks again.
		for _, ws := range h.watchers {
			for w := range ws {
				notify(w)
			}
		}
	}
	c := h.chans[name]
	if c == nil || c.pending == nil || c.pending.kind != kind {
		return
	}
	p := c.pending
	c.pending = nil
	if p.activate != nil {
		p.activate()
	}
	p.done <- nil
}

func (h *hub) dispatch(name, payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if name == h.wake {
		for w := range h.watchers[payload] {
			notify(w)
		}
		return
	}
	if c := h.chans[name]; c != nil {
		for s := range c.subs {
			s.deliver(payload)
		}
	}
}

// dispatchInbox hands a message received through the inbox pattern to the
// listener of its channel on this replica, if any.
func (h *hub) dispatchInbox(pattern, name, payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pattern != h.inbox {
		return
	}
	if s := h.listeners[name]; s != nil {
		s.deliver(payload)
	}
}

func notify(w chan struct{}) {
	select {
	case w <- struct{}{}:
	default:
	}
}

// errBusy is returned by an exclusive subscribe to a channel that has a
// subscriber on this replica.
var errBusy = errors.New("channel already has a listener")

// subscribe adds s to channel name once Redis has confirmed that the
// connection receives what is published from then on, or returns an error:
// ctx's, if it ends first. exclusive fails if the channel has a subscriber
// here already.
func (h *hub) subscribe(ctx context.Context, name string, s *sub, exclusive bool) error {
	return h.subscribeAny(ctx, name, false, s, exclusive)
}

// subscribeAny is subscribe for a channel or, if pattern, a pattern.
func (h *hub) subscribeAny(ctx context.Context, name string, pattern bool, s *sub, exclusive bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.mu.Lock()
	if err := h.startLocked(); err != nil {
		h.mu.Unlock()
		return err
	}
	c := h.chans[name]
	if c == nil {
		c = &hubChan{name: name, pattern: pattern, subs: map[*sub]struct{}{}}
		h.chans[name] = c
	}
	if exclusive && c.users > 0 {
		h.mu.Unlock()
		return errBusy
	}
	c.users++
	s.c, s.state = c, subPending
	h.mu.Unlock()

	result := make(chan error, 1)
	go func() { result <- h.join(s) }()
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.state == subActive {
		return nil // confirmed just now
	}
	if s.state == subPending {
		s.state = subAbandoned // join undoes the subscription
	}
	return ctx.Err()
}

// join runs the barrier for s and adds s to its channel, unless it fails
// or s was abandoned.
func (h *hub) join(s *sub) error {
	c := s.c
	c.op.Lock()
	defer c.op.Unlock()
	err := h.barrier(c, func() {
		if s.state == subPending {
			s.state = subActive
			c.subs[s] = struct{}{}
		}
	})
	h.mu.Lock()
	if err == nil && s.state == subActive {
		h.mu.Unlock()
		return nil
	}
	if s.state != subActive && s.state != subEnded {
		s.state = subEnded
	}
	if err == nil {
		err = errClosed // abandoned (the caller has its own error) or closed
	}
	// Without a subscriber here, the connection must not stay subscribed,
	// or PUBLISH would count a receiver: unsubscribe, also when the
	// SUBSCRIBE failed, since Redis may still have executed it.
	if len(c.subs) == 0 && !h.closed {
		h.unsubscribeLocked(c)
		h.mu.Lock()
	}
	h.releaseLocked(c)
	h.mu.Unlock()
	return err
}

// barrier runs add once Redis has confirmed that everything published
// from now on reaches the connection: the channel's SUBSCRIBE, or a PING if
// the channel is subscribed already. The caller holds c.op.
func (h *hub) barrier(c *hubChan, add func()) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errClosed
	}
	ps := h.ps
	var p *pending
	var send func(context.Context) error
	if c.live {
		h.nextPing++
		tok := "redisstore:" + strconv.FormatUint(h.nextPing, 10)
		p = newPending("pong", add)
		h.pings[tok] = p
		send = func(ctx context.Context) error { return ps.Ping(ctx, tok) }
		defer func() {
			h.mu.Lock()
			delete(h.pings, tok)
			h.mu.Unlock()
		}()
	} else if c.pattern {
		p = newPending("psubscribe", func() { c.live = true; add() })
		c.pending = p
		send = func(ctx context.Context) error { return ps.PSubscribe(ctx, c.name) }
	} else {
		p = newPending("subscribe", func() { c.live = true; add() })
		c.pending = p
		send = func(ctx context.Context) error { return ps.Subscribe(ctx, c.name) }
	}
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(h.ctx, confirmTimeout)
	defer cancel()
	err := send(ctx)
	if err == nil {
		select {
		case err = <-p.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case e := <-p.done: // confirmed after all, or failed by lost or close
		if e == nil {
			return nil
		}
	default:
	}
	if c.pending == p {
		c.pending = nil
	}
	return err
}

// unsubscribe removes s and, if it was the channel's last subscriber here,
// unsubscribes the connection. It returns once Redis has confirmed, or
// after confirmTimeout.
func (h *hub) unsubscribe(s *sub) {
	c := s.c
	h.mu.Lock()
	if s.state != subActive {
		h.mu.Unlock()
		return
	}
	s.state = subEnded
	delete(c.subs, s)
	s.end()
	if len(c.subs) > 0 || h.closed {
		h.releaseLocked(c)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		c.op.Lock()
		defer c.op.Unlock()
		h.mu.Lock()
		if len(c.subs) == 0 && c.live && !h.closed {
			h.unsubscribeLocked(c)
			h.mu.Lock()
		}
		h.releaseLocked(c)
		h.mu.Unlock()
	}()
	select {
	case <-done:
	case <-time.After(confirmTimeout):
	}
}

// unsubscribeLocked unsubscribes c on the server and waits for the
// confirmation. The caller holds c.op and h.mu, which is released.
func (h *hub) unsubscribeLocked(c *hubChan) {
	c.live = false
	kind, send := "unsubscribe", h.ps.Unsubscribe
	if c.pattern {
		kind, send = "punsubscribe", h.ps.PUnsubscribe
	}
	p := newPending(kind, nil)
	c.pending = p
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(h.ctx, confirmTimeout)
	defer cancel()
	if err := send(ctx, c.name); err == nil {
		select {
		case <-p.done:
		case <-ctx.Done():
		}
	}
	h.mu.Lock()
	if c.pending == p {
		c.pending = nil
	}
	h.mu.Unlock()
}

// releaseLocked drops one user of c, and c itself after the last.
func (h *hub) releaseLocked(c *hubChan) {
	c.users--
	if c.users == 0 && h.chans[c.name] == c {
		delete(h.chans, c.name)
	}
}

// watch returns a channel that receives a value whenever the event stream
// key may have changed, on any replica, until unwatch is called.
func (h *hub) watch(ctx context.Context, key string) (changed <-chan struct{}, unwatch func(), err error) {
	if err := h.keep(ctx, h.wake, false); err != nil {
		return nil, nil, err
	}
	w := make(chan struct{}, 1)
	h.mu.Lock()
	ws := h.watchers[key]
	if ws == nil {
		ws = map[chan struct{}]struct{}{}
		h.watchers[key] = ws
	}
	ws[w] = struct{}{}
	h.mu.Unlock()
	return w, func() {
		h.mu.Lock()
		delete(ws, w)
		if cur, ok := h.watchers[key]; ok && len(cur) == 0 {
			delete(h.watchers, key)
		}
		h.mu.Unlock()
	}, nil
}

// listen makes s the listener of the inbox channel name on this replica,
// once the connection has the inbox pattern: from then on it receives what
// is published on name. It fails if the channel has a listener here.
func (h *hub) listen(ctx context.Context, name string, s *sub) error {
	if err := h.keep(ctx, h.inbox, true); err != nil {
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
	s.state = subActive
	return nil
}

// unlisten removes the listener s of the inbox channel name.
func (h *hub) unlisten(name string, s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.listeners[name] != s || s.state != subActive {
		return
	}
	delete(h.listeners, name)
	s.state = subEnded
	s.end()
}

// keep makes sure that the connection has the channel (or pattern) name.
// The first caller subscribes it, for good: go-redis resubscribes it after
// a reconnect. Concurrent callers wait for that, each until its ctx ends.
func (h *hub) keep(ctx context.Context, name string, pattern bool) error {
	for {
		h.mu.Lock()
		if c := h.chans[name]; c != nil && c.live {
			h.mu.Unlock()
			return nil
		}
		if h.closed {
			h.mu.Unlock()
			return errClosed
		}
		joining := h.joining[name]
		if joining == nil {
			joining = make(chan struct{})
			h.joining[name] = joining
			go func() {
				// Bounded by confirmTimeout, not by any caller's context.
				err := h.subscribeAny(context.Background(), name, pattern, &sub{deliver: func(string) {}, end: func() {}}, false)
				h.mu.Lock()
				delete(h.joining, name)
				h.mu.Unlock()
				close(joining)
				if err != nil {
					h.log.Warn("redisstore: subscribe for good", "channel", name, "error", err)
				}
			}()
		}
		h.mu.Unlock()
		select {
		case <-joining:
			h.mu.Lock()
			c := h.chans[name]
			ok := c != nil && c.live
			h.mu.Unlock()
			if !ok {
				return errors.New("cannot subscribe to " + name)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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

// close ends the connection and every subscription. It is idempotent.
func (h *hub) close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.cancel()
	for _, c := range h.chans {
		if p := c.pending; p != nil {
			c.pending = nil
			p.done <- errClosed
		}
		for s := range c.subs {
			s.state = subEnded
			s.end()
		}
		clear(c.subs)
	}
	for tok, p := range h.pings {
		delete(h.pings, tok)
		p.done <- errClosed
	}
	for name, s := range h.listeners {
		delete(h.listeners, name)
		s.state = subEnded
		s.end()
	}
	for _, ws := range h.watchers {
		for w := range ws {
			notify(w)
		}
	}
	ps, done := h.ps, h.done
	h.mu.Unlock()
	if ps == nil {
		return nil
	}
	err := ps.Close()
	<-done
	if errors.Is(err, redis.ErrClosed) {
		err = nil
	}
	return err
}
