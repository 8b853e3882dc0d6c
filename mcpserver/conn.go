package mcpserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A conn is the mcp.Connection of one legacy POST: the go-sdk ServerSession
// rebuilt for that request reads the POST's calls from it. What it writes
// goes to the POST's HTTP response from memory, and to the stream's event
// log, from which a client that resumes the stream (Last-Event-ID) is
// served, on any replica. Client responses to server-to-client requests and
// cancellations arrive through the Inbox, so they may be POSTed to any
// replica.
//
// The log is written as seldom as it can be. While the request is young
// (Options.StreamDelay), what it writes is held in memory and nothing is
// sent: a request that is over by then is logged with one write (the
// session check, every message and the end of the stream) before its
// response is sent. Otherwise (also as soon as it sends a server-to-client
// request or asks to close the SSE connection) the stream is opened: one
// write checks the session, takes the stream's lease and logs what was
// held; from then on, each message is logged before it is sent, the last
// one with the end of the stream. Every event a client sees is in the log,
// so that it can resume after any of them.
type conn struct {
	h         *Handler
	sessionID string
	streamID  string
	extra     mcp.RequestExtra
	unlogged  bool // initialize: answered as JSON, never logged
	owner     string
	ids       []json.RawMessage // the JSON-RPC IDs of the calls, for the lease

	incoming  chan jsonrpc.Message
	done      chan struct{}
	closeHTTP chan time.Duration
	ready     chan struct{} // closed when the stream is open or the request over

	// wmu serializes writes to the log (and the changes of state), so that
	// the log and the HTTP response see the messages in one order.
	wmu sync.Mutex

	mu       sync.Mutex
	pending  map[string]*jsonrpc.Request // incoming calls awaiting a response, by idKey
	outgoing map[string]jsonrpc.ID       // our rewritten server→client IDs → the go-sdk's IDs
	nextOut  int
	stops    []func()
	isDone   bool
	state    streamState
	held     [][]byte      // messages not yet logged (streamHeld)
	sent     []Event       // logged messages the HTTP response has not taken yet
	detached bool          // the HTTP response is gone: sent is not kept
	err      error         // the write that opened or ended the stream failed
	lost     bool          // a later write failed: the HTTP response reads the log instead
	changed  chan struct{} // closed and replaced when sent, state or lost change
}

// A streamState is where a request's stream is in its life.
type streamState int

const (
	streamHeld  streamState = iota // nothing logged nor sent yet
	streamOpen                     // logged and leased; each message is logged, then sent
	streamEnded                    // ended in the log (or given up): later messages are dropped
)

var (
	_ mcp.Transport  = (*conn)(nil)
	_ mcp.Connection = (*conn)(nil)
)

// newConn returns the connection of a request with calls. It listens for
// their cancellations, which costs no store round trip with the Inbox
// implementations of this module.
func newConn(h *Handler, sessionID, streamID string, calls []*jsonrpc.Request, extra mcp.RequestExtra) (_ *conn, err error) {
	c := &conn{
		h:         h,
		sessionID: sessionID,
		streamID:  streamID,
		extra:     extra,
		unlogged:  len(calls) == 1 && calls[0].Method == "initialize",
		owner:     rand.Text(),
		incoming:  make(chan jsonrpc.Message, len(calls)+8),
		done:      make(chan struct{}),
		closeHTTP: make(chan time.Duration, 1),
		ready:     make(chan struct{}),
		pending:   map[string]*jsonrpc.Request{},
		outgoing:  map[string]jsonrpc.ID{},
		changed:   make(chan struct{}),
	}
	ctx := context.Background()
	for _, call := range calls {
		k := idKey(call.ID)
		c.pending[k] = call
		c.ids = append(c.ids, json.RawMessage(k))
		msgs, stop, err := h.stores.Inbox.Listen(ctx, sessionID, "req:"+k)
		if err != nil {
			c.stopAll()
			return nil, err
		}
		c.stops = append(c.stops, stop)
		go c.forwardCancel(k, msgs)
		extra := c.extra
		extra.CloseSSEStream = func(args mcp.CloseSSEStreamArgs) {
			// The client will resume the stream: it must be in the log.
			c.open()
			select {
			case c.closeHTTP <- args.RetryAfter:
			default:
			}
		}
		call.Extra = &extra
		c.incoming <- call
	}
	return c, nil
}

// Connect implements mcp.Transport: the conn is its own connection.
func (c *conn) Connect(context.Context) (mcp.Connection, error) { return c, nil }

// SessionID implements mcp.Connection.
func (c *conn) SessionID() string { return c.sessionID }

// Read implements mcp.Connection.
func (c *conn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case m := <-c.incoming:
		return m, nil
	case <-c.done:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// forwardCancel passes a client's notifications/cancelled for call k to the
// go-sdk, which cancels the handler, and ends the call: per the spec no
// response is sent for a cancelled request.
func (c *conn) forwardCancel(k string, msgs <-chan []byte) {
	for {
		select {
		case <-c.done:
			return
		case data, ok := <-msgs:
			if !ok {
				return
			}
			m, err := jsonrpc.DecodeMessage(data)
			if err != nil {
				continue
			}
			// Forgotten before the go-sdk hears of it, so that the result
			// of the cancelled handler (an error) is not written.
			c.wmu.Lock()
			c.mu.Lock()
			delete(c.pending, k)
			last := len(c.pending) == 0
			c.mu.Unlock()
			c.wmu.Unlock()
			select {
			case c.incoming <- m:
			case <-c.done:
				return
			}
			if last {
				c.wmu.Lock()
				c.finishLocked()
				c.wmu.Unlock()
			}
			return
		}
	}
}

// Write implements mcp.Connection.
func (c *conn) Write(ctx context.Context, msg jsonrpc.Message) error {
	switch m := msg.(type) {
	case *jsonrpc.Response:
		k := idKey(m.ID)
		c.mu.Lock()
		call := c.pending[k]
		c.mu.Unlock()
		if call == nil {
			return nil // cancelled, or not ours: say nothing
		}
		c.h.afterResponse(ctx, c.sessionID, call, m)
		data, err := jsonrpc.EncodeMessage(m)
		if err != nil {
			return err
		}
		// Under wmu, so that no other response can end the stream before
		// this one is written.
		c.wmu.Lock()
		defer c.wmu.Unlock()
		c.mu.Lock()
		_, still := c.pending[k]
		delete(c.pending, k)
		last := still && len(c.pending) == 0
		c.mu.Unlock()
		if !still {
			return nil // cancelled meanwhile
		}
		err = c.emitLocked(data, last)
		if last {
			c.closeLocked()
		}
		return err
	case *jsonrpc.Request:
		if !m.IsCall() {
			if broadcastMethods[m.Method] {
				// Delivered to GET streams through the Broadcaster instead.
				return nil
			}
			data, err := jsonrpc.EncodeMessage(m)
			if err != nil {
				return err
			}
			c.wmu.Lock()
			defer c.wmu.Unlock()
			if err := c.emitLocked(data, false); err != nil {
				// A notification the log refused is dropped; an error here
				// would make the go-sdk close the connection and cancel
				// every call of the request.
				c.h.log.Warn("log notification", "session", shortHash(c.sessionID), "error", err)
			}
			return nil
		}
		return c.call(m)
	}
	return nil
}

// broadcastMethods are the notifications that concern the whole session
// rather than one request.
var broadcastMethods = map[string]bool{
	"notifications/tools/list_changed":     true,
	"notifications/prompts/list_changed":   true,
	"notifications/resources/list_changed": true,
	"notifications/resources/updated":      true,
}

// call sends a server-to-client request on this stream. Its ID is rewritten
// to one unique in the session, since many rebuilt ServerSessions of one
// session each count their IDs from 1. The client must see it at once, so
// the stream is opened.
func (c *conn) call(m *jsonrpc.Request) error {
	c.mu.Lock()
	c.nextOut++
	wireID, _ := jsonrpc.MakeID(c.streamID + "." + strconv.Itoa(c.nextOut))
	c.outgoing[idKey(wireID)] = m.ID
	c.mu.Unlock()
	msgs, stop, err := c.h.stores.Inbox.Listen(context.Background(), c.sessionID, "resp:"+idKey(wireID))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.stops = append(c.stops, stop)
	c.mu.Unlock()
	go func() {
		defer stop()
		select {
		case <-c.done:
		case data, ok := <-msgs:
			if !ok {
				return
			}
			resp, err := jsonrpc.DecodeMessage(data)
			r, ok := resp.(*jsonrpc.Response)
			if err != nil || !ok {
				return
			}
			r.ID = m.ID
			select {
			case c.incoming <- r:
			case <-c.done:
			}
		}
	}()
	out := *m
	out.ID = wireID
	data, err := jsonrpc.EncodeMessage(&out)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	held := c.state == streamHeld
	if held {
		c.held = append(c.held, data)
	}
	c.mu.Unlock()
	if held {
		return c.openLocked()
	}
	return c.emitLocked(data, false)
}

// emitLocked writes one message: held, or logged and then sent. last ends
// the stream after it. The caller holds wmu.
func (c *conn) emitLocked(data []byte, last bool) error {
	c.mu.Lock()
	state := c.state
	if state == streamHeld {
		c.held = append(c.held, data)
	}
	c.mu.Unlock()
	switch state {
	case streamHeld:
		if last {
			return c.flushLocked(true)
		}
		return nil
	case streamOpen:
		return c.logLocked([][]byte{data}, last)
	}
	return nil // the request is over; late notifications are dropped
}

// open opens the stream, if it is still held.
func (c *conn) open() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	held := c.state == streamHeld
	c.mu.Unlock()
	if held {
		if err := c.openLocked(); err != nil {
			c.h.log.Warn("open request stream", "session", shortHash(c.sessionID), "error", err)
		}
	}
}

// openLocked logs the held messages, checking the session and taking the
// stream's lease, and starts renewing the lease. If the write fails, the
// request is given up (the HTTP response answers with the error).
func (c *conn) openLocked() error {
	if err := c.flushLocked(false); err != nil {
		c.closeLocked()
		return err
	}
	go c.renewLease()
	return nil
}

// flushLocked writes the held messages: all of them and the end of the
// stream (end), or opens it. The session must still exist: a request of a
// session deleted meanwhile (on any replica) is answered with 404.
func (c *conn) flushLocked(end bool) error {
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.mu.Unlock()
	var last int64
	var err error
	if c.unlogged {
		last = int64(len(held))
	} else {
		w := &StreamWrite{Session: true, Events: held, End: end}
		if !end {
			w.Owner, w.IDs, w.LeaseTTL = c.owner, c.ids, c.h.opts.LeaseTTL
		}
		last, err = c.h.writeStream(context.Background(), c.sessionID, c.streamID, w)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.err = err
		c.state = streamEnded
	} else {
		c.addSentLocked(held, last)
		c.state = streamOpen
		if end {
			c.state = streamEnded
		}
	}
	close(c.ready)
	c.notifyLocked()
	return err
}

// logLocked logs messages of the open stream (and ends it), then hands
// them to the HTTP response. If the write fails, the HTTP response goes on
// from the log: whatever makes it there (a rescuer's answers, if this
// replica lost its lease) reaches the client.
func (c *conn) logLocked(msgs [][]byte, end bool) error {
	last, err := c.h.writeStream(context.Background(), c.sessionID, c.streamID, &StreamWrite{Events: msgs, End: end})
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lost = true
	} else {
		c.addSentLocked(msgs, last)
		if end {
			c.state = streamEnded
		}
	}
	c.notifyLocked()
	return err
}

// addSentLocked hands msgs, the last of which has sequence number last, to
// the HTTP response.
func (c *conn) addSentLocked(msgs [][]byte, last int64) {
	if c.detached {
		return
	}
	first := last - int64(len(msgs)) + 1
	for i, data := range msgs {
		c.sent = append(c.sent, Event{Seq: first + int64(i), Data: data})
	}
}

func (c *conn) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// renewLease renews the stream's lease every LeaseTTL/3 until the request
// is over. If another replica took the lease over (it answered the requests
// with an error and ended the stream), the request is abandoned.
func (c *conn) renewLease() {
	ttl := c.h.opts.LeaseTTL
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if c.h.stopRenewals.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
		ok, err := c.h.stores.Leases.Lease(ctx, c.sessionID, c.streamID, c.owner, c.ids, ttl)
		cancel()
		switch {
		case err != nil:
			c.h.log.Warn("renew stream lease", "session", shortHash(c.sessionID), "error", err)
		case !ok:
			c.h.log.Warn("stream lease taken over; abandoning the request", "session", shortHash(c.sessionID))
			c.finish()
			return
		}
	}
}

// finish ends the stream and releases the connection. It is idempotent.
func (c *conn) finish() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.finishLocked()
}

// finishLocked ends the stream, with whatever was held, and releases the
// connection. The caller holds wmu.
func (c *conn) finishLocked() {
	c.mu.Lock()
	done, state, lost := c.isDone, c.state, c.lost
	c.mu.Unlock()
	if done {
		return
	}
	var err error
	switch {
	case state == streamHeld:
		err = c.flushLocked(true)
	case state == streamOpen && !lost:
		err = c.logLocked(nil, true)
		// If a write failed (lost), the stream is left open: once its lease
		// lapses, the client's follow answers what the log lacks (rescue).
	}
	if err != nil {
		c.h.log.Warn("end stream", "session", shortHash(c.sessionID), "error", err)
	}
	c.closeLocked()
}

// closeLocked releases the connection: the go-sdk session reads EOF.
func (c *conn) closeLocked() {
	c.mu.Lock()
	if c.isDone {
		c.mu.Unlock()
		return
	}
	c.isDone = true
	c.mu.Unlock()
	close(c.done)
	c.stopAll()
}

func (c *conn) stopAll() {
	c.mu.Lock()
	stops := c.stops
	c.stops = nil
	c.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

// Close implements mcp.Connection.
func (c *conn) Close() error {
	c.finish()
	return nil
}

// take returns the messages logged since the last take, whether the
// stream is over (ended, or given up with err), whether the HTTP response
// must read on from the log, and a channel closed on the next change.
func (c *conn) take() (events []Event, ended, lost bool, changed <-chan struct{}, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	events, c.sent = c.sent, nil
	return events, c.state == streamEnded, c.lost, c.changed, c.err
}

// detach tells the conn that the HTTP response is gone.
func (c *conn) detach() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.detached = true
	c.sent = nil
}

// writeStream applies w to a stream, and tells the session cache what it
// learned of the session.
func (h *Handler) writeStream(ctx context.Context, sessionID, streamID string, w *StreamWrite) (int64, error) {
	last, err := h.stores.Events.WriteStream(ctx, sessionID, streamID, w)
	if w.Session {
		// What the session cache learns.
		switch {
		case err == nil:
			h.cache.checked(sessionID)
		case errors.Is(err, ErrNotFound):
			h.cache.forget(sessionHash(sessionID))
		}
	}
	return last, err
}

// afterResponse persists what a successful call changed in the session
// record: the negotiated state after initialize, the log level, and resource
// subscriptions. It runs before the response is visible to the client, so
// the client's next request sees the new state on any replica.
func (h *Handler) afterResponse(ctx context.Context, sid string, call *jsonrpc.Request, resp *jsonrpc.Response) {
	ctx = context.WithoutCancel(ctx)
	if resp.Error != nil {
		if call.Method == "initialize" {
			h.forget(ctx, sid)
		}
		return
	}
	var update func(*Session)
	switch call.Method {
	case "initialize":
		var params mcp.InitializeParams
		var result struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if json.Unmarshal(call.Params, &params) != nil || json.Unmarshal(resp.Result, &result) != nil {
			h.forget(ctx, sid)
			return
		}
		update = func(s *Session) {
			s.State.InitializeParams = &params
			s.State.NegotiatedProtocolVersion = result.ProtocolVersion
			s.State.LogLevel = "info"
		}
	case "logging/setLevel":
		// Legacy only: logging is deprecated in 2026-07-28 (SEP-2577).
		var p struct {
			//lint:ignore SA1019 legacy sessions still negotiate logging
			Level mcp.LoggingLevel `json:"level"`
		}
		if json.Unmarshal(call.Params, &p) != nil {
			return
		}
		update = func(s *Session) { s.State.LogLevel = p.Level }
	case "resources/subscribe", "resources/unsubscribe":
		var p struct {
			URI string `json:"uri"`
		}
		if json.Unmarshal(call.Params, &p) != nil {
			return
		}
		sub := call.Method == "resources/subscribe"
		update = func(s *Session) {
			s.Subscriptions = slices.DeleteFunc(s.Subscriptions, func(u string) bool { return u == p.URI })
			if sub && len(s.Subscriptions) < maxSubscriptions {
				s.Subscriptions = append(s.Subscriptions, p.URI)
			}
		}
	default:
		return
	}
	err := h.stores.Sessions.Update(ctx, sid, update)
	if call.Method == "initialize" {
		h.cache.forget(sessionHash(sid)) // no other replica knows the session yet
	} else {
		h.sessionChanged(ctx, sid)
	}
	if err != nil {
		h.log.Warn("update session", "session", shortHash(sid), "method", call.Method, "error", err)
	}
}

// maxSubscriptions bounds the resource subscriptions of one session.
const maxSubscriptions = 256

func (h *Handler) forget(ctx context.Context, sid string) {
	_ = h.stores.Sessions.Delete(ctx, sid)
}

// shortHash identifies a secret-ish value (a session ID) in logs without
// revealing it.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}
