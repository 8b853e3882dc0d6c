package mcpserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
// The stream goes through these phases (conn.phase):
//
//	held ──open──▶ open ──end──▶ ended
//	  │              └──a write fails, or the lease is taken over──▶ lost
//	  ├──end──▶ ended
//	  └──the opening write fails──▶ failed
//
// Held: while the request is young (Options.StreamDelay), what it writes is
// queued in memory and nothing is logged nor sent. A request over by then
// is logged with one write (the session check, every message and the end)
// before its response is sent.
//
// Open: when the delay is over, the request sends a server-to-client
// request, or it asks to close the SSE connection, one write checks the
// session, takes the stream's lease and logs what was queued. From then on
// each message is logged, then handed to the HTTP response; the last
// response is logged with the end of the stream. Every event a client sees
// is in the log, so that it can resume after any of them.
//
// Failed: the opening write failed (the session is gone, or the store is):
// the request is given up, and its HTTP response is an error.
//
// Lost: a later write failed, or another replica took the lease over.
// Nothing more is logged, and the stream is left open, to a rescuer: the
// HTTP response reads on from the log instead.
//
// Ended: later messages are dropped.
//
// The lease and its rescue: while the stream is open, the conn renews its
// lease every LeaseTTL/3 until the request is over. If this replica dies,
// or the stream is lost, the renewals stop; once the lease has lapsed,
// whoever follows the stream (a resumed GET on any replica, or this POST's
// response, if lost) takes the lease over, answers the requests the log
// does not answer with an error and ends the stream (Handler.rescue). A
// conn that finds its lease taken over gives the request up without
// writing anything more: the stream is the rescuer's.
//
// Writes are made one at a time, in the order of the messages: a message
// is queued under mu, and whoever finds no write in flight writes the
// queue, as one StreamWrite, until it is empty. No lock is held during a
// store call, and every store call has a deadline.
type conn struct {
	h         *Handler
	sessionID string
	streamID  string
	unlogged  bool // initialize: answered as JSON, never logged
	owner     string
	ids       []json.RawMessage // the JSON-RPC IDs of the calls, for the lease

	incoming  chan jsonrpc.Message
	done      chan struct{}      // closed when the request is over: the go-sdk reads EOF
	closeHTTP chan time.Duration // the request asks to close the SSE connection: retry after

	mu       sync.Mutex
	pending  map[string]*jsonrpc.Request // incoming calls awaiting a response, by idKey
	nextOut  int                         // the last server-to-client request ID's counter
	stops    []func()                    // stop the Inbox listeners
	phase    streamPhase
	queue    [][]byte      // messages not yet logged
	want     streamPhase   // what was asked: open (if held), or ended (the end is queued)
	writing  bool          // a write is in flight
	sent     []Event       // logged messages the HTTP response has not taken yet
	detached bool          // the HTTP response is gone: sent is not kept
	err      error         // why the opening write failed
	changed  chan struct{} // closed and replaced when sent or phase change
	budget   int           // bytes the request may still produce (Options.MaxResponseBytes)
}

// codeResponseTooLarge is the JSON-RPC error code of a response replaced
// because the request's responses went past Options.MaxResponseBytes.
const codeResponseTooLarge = -32000

// overBudgetLocked charges data to the request's budget and reports
// whether it did not fit (and so was not charged).
func (c *conn) overBudgetLocked(data []byte) bool {
	if len(data) > c.budget {
		return true
	}
	c.budget -= len(data)
	return false
}

// A streamPhase is where a request's stream is in its life (see conn).
// The first three are in the order of that life (conn.want relies on it).
type streamPhase int

const (
	streamHeld streamPhase = iota
	streamOpen
	streamEnded
	streamFailed
	streamLost
)

var (
	_ mcp.Transport  = (*conn)(nil)
	_ mcp.Connection = (*conn)(nil)
)

// storeCtx bounds a store call made for the request, which runs on
// whether or not its client is still there.
func (c *conn) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.h.opts.LeaseTTL)
}

// newConn returns the connection of a request with calls. It listens for
// their cancellations, which costs no store round trip with the Inbox
// implementations of this module.
func newConn(h *Handler, sessionID, streamID string, calls []*jsonrpc.Request, extra mcp.RequestExtra) (_ *conn, err error) {
	c := &conn{
		h:         h,
		sessionID: sessionID,
		streamID:  streamID,
		unlogged:  len(calls) == 1 && calls[0].Method == "initialize",
		owner:     rand.Text(),
		incoming:  make(chan jsonrpc.Message, len(calls)+8),
		done:      make(chan struct{}),
		closeHTTP: make(chan time.Duration, 1),
		pending:   map[string]*jsonrpc.Request{},
		changed:   make(chan struct{}),
		budget:    h.opts.MaxResponseBytes,
	}
	ctx, cancel := c.storeCtx()
	defer cancel()
	for _, call := range calls {
		k := idKey(call.ID)
		c.pending[k] = call
		c.ids = append(c.ids, json.RawMessage(k))
		msgs, stop, err := h.stores.Inbox.Listen(ctx, sessionID, "req:"+k)
		if err != nil {
			c.close()
			return nil, err
		}
		c.stops = append(c.stops, stop)
		go c.forwardCancel(k, msgs)
		extra := extra
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
// go-sdk, which cancels the handler, and ends the call: no response is sent
// for a cancelled request.
//
// Forgetting the call first works around a go-sdk limitation: it still
// writes the cancelled handler's response (upstream:
// https://github.com/modelcontextprotocol/go-sdk/issues/1235 and
// https://github.com/modelcontextprotocol/go-sdk/issues/1259; a fix is proposed in
// https://github.com/modelcontextprotocol/go-sdk/pull/1267), which Write then drops as not
// pending. The go-sdk test
// TestGoSDKAnswersCancelledCalls fails once the go-sdk stops answering, and
// this can then simply forward the notification.
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
			c.mu.Lock()
			delete(c.pending, k)
			last := len(c.pending) == 0
			c.mu.Unlock()
			select {
			case c.incoming <- m:
			case <-c.done:
				return
			}
			if last {
				c.finish()
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
		c.mu.Lock()
		if c.pending[k] == nil {
			c.mu.Unlock()
			return nil // cancelled meanwhile
		}
		if c.overBudgetLocked(data) {
			// Small, and charged to nobody: the error responses of a
			// request are at most one per call.
			data, _ = jsonrpc.EncodeMessage(&jsonrpc.Response{ID: m.ID, Error: &jsonrpc.Error{Code: codeResponseTooLarge,
				Message: fmt.Sprintf("response too large: the responses to one request may produce at most %d bytes; send fewer calls per batch or ask for less", c.h.opts.MaxResponseBytes)}})
		}
		// Queued in the same critical section, so that no other response
		// can queue the end of the stream before this one.
		delete(c.pending, k)
		last := len(c.pending) == 0
		c.queueLocked(data, last)
		err = c.flushLocked()
		failed := c.phase == streamFailed
		c.mu.Unlock()
		if last || failed {
			c.close()
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
			c.mu.Lock()
			over := c.overBudgetLocked(data)
			c.mu.Unlock()
			if over {
				return nil // past the request's budget: dropped
			}
			if err := c.send(data, false); err != nil {
				// A notification the log refused is dropped; an error here
				// would make the go-sdk take the connection for broken and
				// cancel every call of the request (no upstream issue
				// found; TestGoSDKWriteErrorCancelsCalls tells if that
				// changes).
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
// session each count their IDs from the same start (the go-sdk numbers a
// connection's requests itself, and cannot be given a start or a prefix; no
// upstream issue found; TestGoSDKRebuildsSessionsFromState tells if that
// changes). The client must see it at once, so the stream is opened.
func (c *conn) call(m *jsonrpc.Request) error {
	c.mu.Lock()
	c.nextOut++
	wireID, _ := jsonrpc.MakeID(c.streamID + "." + strconv.Itoa(c.nextOut))
	c.mu.Unlock()
	ctx, cancel := c.storeCtx()
	msgs, stop, err := c.h.stores.Inbox.Listen(ctx, c.sessionID, "resp:"+idKey(wireID))
	cancel()
	if err != nil {
		return err
	}
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		stop()
		return nil // the request is over
	default:
	}
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
	c.mu.Lock()
	c.want = max(c.want, streamOpen)
	c.mu.Unlock()
	return c.send(data, false)
}

// open opens the stream, if it is still held.
func (c *conn) open() {
	c.mu.Lock()
	c.want = max(c.want, streamOpen)
	c.mu.Unlock()
	if err := c.send(nil, false); err != nil {
		c.h.log.Warn("open request stream", "session", shortHash(c.sessionID), "error", err)
	}
}

// finish ends the stream, with whatever was queued, and releases the
// connection. It is idempotent. A lost stream is left open: once its
// lease lapses, whoever follows it answers what the log lacks.
func (c *conn) finish() {
	if err := c.send(nil, true); err != nil {
		c.h.log.Warn("end stream", "session", shortHash(c.sessionID), "error", err)
	}
	c.close()
}

// send queues data (if not nil) and, if end, the end of the stream, and
// writes the queue unless the stream is held. If the stream could not be
// opened, the connection is released.
func (c *conn) send(data []byte, end bool) error {
	c.mu.Lock()
	c.queueLocked(data, end)
	err := c.flushLocked()
	failed := c.phase == streamFailed
	c.mu.Unlock()
	if failed {
		c.close()
	}
	return err
}

// queueLocked queues data (if not nil) and, if end, the end of the
// stream. Once the stream is ended, failed or lost, nothing is queued.
func (c *conn) queueLocked(data []byte, end bool) {
	if c.phase != streamHeld && c.phase != streamOpen {
		return
	}
	if data != nil {
		c.queue = append(c.queue, data)
	}
	if end {
		c.want = streamEnded
	}
}

// flushLocked writes what is queued, unless the stream is held (and
// neither its opening nor its end was asked) or another write is in
// flight (which then writes it too). The caller holds mu, which is
// released during each store call. It returns the error of the writes it
// made.
func (c *conn) flushLocked() error {
	if c.writing {
		return nil
	}
	c.writing = true
	defer func() { c.writing = false }()
	var err error
	for {
		w := c.nextWriteLocked()
		if w == nil {
			return err
		}
		from := c.phase
		var last int64
		var werr error
		c.mu.Unlock()
		if c.unlogged {
			last = int64(len(w.Events))
		} else {
			ctx, cancel := c.storeCtx()
			last, werr = c.h.writeStream(ctx, c.sessionID, c.streamID, w)
			cancel()
		}
		c.mu.Lock()
		switch {
		case werr != nil && from == streamHeld:
			c.phase, c.err, c.queue = streamFailed, werr, nil
		case werr != nil:
			c.phase, c.queue = streamLost, nil
		default:
			c.addSentLocked(w.Events, last)
			switch {
			case w.End:
				c.phase = streamEnded
			case from == streamHeld:
				c.phase = streamOpen
				go c.renewLease()
			}
		}
		if werr != nil {
			err = werr
		}
		if c.phase == streamEnded || c.phase == streamFailed {
			// No call is left to cancel nor answer. The listeners stop
			// before the HTTP response learns it, so that the client's
			// next request may reuse the JSON-RPC IDs of this one.
			stops := c.stops
			c.stops = nil
			c.mu.Unlock()
			for _, stop := range stops {
				stop()
			}
			c.mu.Lock()
		}
		c.notifyLocked()
	}
}

// nextWriteLocked returns the next write to make, or nil.
func (c *conn) nextWriteLocked() *StreamWrite {
	switch c.phase {
	case streamHeld:
		if c.want == streamHeld {
			return nil
		}
		end := c.want == streamEnded
		w := &StreamWrite{Session: true, Events: c.queue, End: end}
		if !end {
			w.Owner, w.IDs, w.LeaseTTL = c.owner, c.ids, c.h.opts.LeaseTTL
		}
		c.queue = nil
		return w
	case streamOpen:
		end := c.want == streamEnded
		if len(c.queue) == 0 && !end {
			return nil
		}
		w := &StreamWrite{Events: c.queue, End: end}
		c.queue = nil
		return w
	}
	return nil
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
			c.mu.Lock()
			if c.phase == streamOpen {
				// The stream is the rescuer's: the HTTP response reads
				// its answers from the log.
				c.phase, c.queue = streamLost, nil
				c.notifyLocked()
			}
			c.mu.Unlock()
			c.close()
			return
		}
	}
}

// close releases the connection: the go-sdk session reads EOF, and the
// Inbox listeners stop. It is idempotent.
func (c *conn) close() {
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return
	default:
	}
	close(c.done)
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

// opened waits until the stream is no longer held, and reports whether it
// is, or ctx ended first.
func (c *conn) opened(ctx context.Context) bool {
	for {
		c.mu.Lock()
		phase, changed := c.phase, c.changed
		c.mu.Unlock()
		if phase != streamHeld {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// take returns the messages logged since the last take, the stream's
// phase, and a channel closed on the next change. While the phase is held
// or open, more may come; if lost, the HTTP response must read on from the
// log; if failed, c.failure tells why.
func (c *conn) take() (events []Event, phase streamPhase, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	events, c.sent = c.sent, nil
	return events, c.phase, c.changed
}

// failure returns why the stream could not be opened.
func (c *conn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
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
	// The request runs on whether or not its client is still there.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.LeaseTTL)
	defer cancel()
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
		kept, err := keptInitializeParams(&params)
		if err != nil { // initialize checked them before the session was created
			h.forget(ctx, sid)
			return
		}
		update = func(s *Session) {
			s.State.InitializeParams = kept
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
		if ss, ok := h.stores.Sessions.(SubscriptionStore); ok {
			// One member added or removed; the record is not rewritten.
			h.changed(ctx, sid, call.Method, ss.SetSubscription(ctx, sid, p.URI, sub))
			return
		}
		update = func(s *Session) {
			s.Subscriptions = slices.DeleteFunc(s.Subscriptions, func(u string) bool { return u == p.URI })
			if sub && len(s.Subscriptions) < MaxSubscriptions {
				s.Subscriptions = append(s.Subscriptions, p.URI)
			}
		}
	default:
		return
	}
	err := h.stores.Sessions.Update(ctx, sid, update)
	if call.Method == "initialize" {
		h.cache.forget(sessionHash(sid)) // no other replica knows the session yet
		if err != nil {
			h.log.Warn("update session", "session", shortHash(sid), "method", call.Method, "error", err)
		}
		return
	}
	h.changed(ctx, sid, call.Method, err)
}

// changed tells every replica that the session's record changed, and logs
// err if the change failed.
func (h *Handler) changed(ctx context.Context, sid, method string, err error) {
	h.sessionChanged(ctx, sid)
	if err != nil {
		h.log.Warn("update session", "session", shortHash(sid), "method", method, "error", err)
	}
}

func (h *Handler) forget(ctx context.Context, sid string) {
	_ = h.stores.Sessions.Delete(ctx, sid)
}

// shortHash identifies a secret-ish value (a session ID) in logs without
// revealing it.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}
