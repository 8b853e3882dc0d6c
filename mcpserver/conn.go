package mcpserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A conn is the mcp.Connection of one legacy POST: the go-sdk ServerSession
// rebuilt for that request reads the POST's calls from it, and everything it
// writes goes to the stream's event log, from which the HTTP response (or a
// resumed GET on any replica) reads. Client responses to server-to-client
// requests and cancellations arrive through the Inbox, so they may be POSTed
// to any replica.
type conn struct {
	h         *Handler
	sessionID string
	streamID  string
	extra     mcp.RequestExtra

	incoming  chan jsonrpc.Message
	done      chan struct{}
	closeHTTP chan time.Duration

	mu       sync.Mutex
	pending  map[string]*jsonrpc.Request // incoming calls awaiting a response, by idKey
	outgoing map[string]jsonrpc.ID       // our rewritten server→client IDs → the go-sdk's IDs
	nextOut  int
	stops    []func()
	isDone   bool
}

var (
	_ mcp.Transport  = (*conn)(nil)
	_ mcp.Connection = (*conn)(nil)
)

func newConn(h *Handler, sessionID, streamID string, calls []*jsonrpc.Request, extra mcp.RequestExtra) (_ *conn, err error) {
	c := &conn{
		h:         h,
		sessionID: sessionID,
		streamID:  streamID,
		extra:     extra,
		incoming:  make(chan jsonrpc.Message, len(calls)+8),
		done:      make(chan struct{}),
		closeHTTP: make(chan time.Duration, 1),
		pending:   map[string]*jsonrpc.Request{},
		outgoing:  map[string]jsonrpc.ID{},
	}
	ctx := context.Background()
	// Lease the stream (a request stream of a StreamLeaser), concurrently
	// with opening it, but before its ID can reach the client.
	var leased chan struct{}
	leaser, _ := h.stores.Events.(StreamLeaser)
	if isInit := len(calls) == 1 && calls[0].Method == "initialize"; leaser != nil && !isInit {
		owner := rand.Text()
		ids := make([]json.RawMessage, len(calls))
		for i, call := range calls {
			ids[i] = json.RawMessage(idKey(call.ID))
		}
		leased = make(chan struct{})
		go func() {
			defer close(leased)
			if _, err := leaser.Lease(ctx, sessionID, streamID, owner, ids, h.opts.LeaseTTL); err != nil {
				h.log.Warn("lease stream", "session", shortHash(sessionID), "error", err)
			}
		}()
		defer func() {
			if err == nil {
				<-leased
				go c.renewLease(leaser, owner, ids)
			}
		}()
	}
	if err := h.stores.Events.Open(ctx, sessionID, streamID); err != nil {
		return nil, err
	}
	for _, call := range calls {
		k := idKey(call.ID)
		c.pending[k] = call
		msgs, stop, err := h.stores.Inbox.Listen(ctx, sessionID, "req:"+k)
		if err != nil {
			c.stopAll()
			return nil, err
		}
		c.stops = append(c.stops, stop)
		go c.forwardCancel(k, msgs)
		extra := c.extra
		extra.CloseSSEStream = func(args mcp.CloseSSEStreamArgs) {
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
				c.finish(context.Background())
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
		// Append while the call is still pending, so that no other
		// response can end the stream before this one is in the log.
		if err := c.append(ctx, m); err != nil {
			return err
		}
		c.mu.Lock()
		_, still := c.pending[k]
		delete(c.pending, k)
		last := still && len(c.pending) == 0
		c.mu.Unlock()
		if last {
			c.finish(ctx)
		}
		return nil
	case *jsonrpc.Request:
		if !m.IsCall() {
			if broadcastMethods[m.Method] {
				// Delivered to GET streams through the Broadcaster instead.
				return nil
			}
			return c.append(ctx, m)
		}
		return c.call(ctx, m)
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
// session each count their IDs from 1.
func (c *conn) call(ctx context.Context, m *jsonrpc.Request) error {
	c.mu.Lock()
	c.nextOut++
	wireID, _ := jsonrpc.MakeID(c.streamID + "." + strconv.Itoa(c.nextOut))
	c.outgoing[idKey(wireID)] = m.ID
	c.mu.Unlock()
	msgs, stop, err := c.h.stores.Inbox.Listen(ctx, c.sessionID, "resp:"+idKey(wireID))
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
	return c.append(ctx, &out)
}

func (c *conn) append(ctx context.Context, m jsonrpc.Message) error {
	data, err := jsonrpc.EncodeMessage(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	ended := c.isDone
	c.mu.Unlock()
	if ended {
		return nil // the request is over; late notifications are dropped
	}
	_, err = c.h.stores.Events.Append(context.WithoutCancel(ctx), c.sessionID, c.streamID, data)
	return err
}

// renewLease renews the stream's lease every LeaseTTL/3 until the request
// is over. If another replica took the lease over (it answered the requests
// with an error and ended the stream), the request is abandoned.
func (c *conn) renewLease(l StreamLeaser, owner string, ids []json.RawMessage) {
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
		ok, err := l.Lease(ctx, c.sessionID, c.streamID, owner, ids, ttl)
		cancel()
		switch {
		case err != nil:
			c.h.log.Warn("renew stream lease", "session", shortHash(c.sessionID), "error", err)
		case !ok:
			c.h.log.Warn("stream lease taken over; abandoning the request", "session", shortHash(c.sessionID))
			c.finish(context.Background())
			return
		}
	}
}

// finish ends the stream and releases the connection. It is idempotent.
func (c *conn) finish(ctx context.Context) {
	c.mu.Lock()
	if c.isDone {
		c.mu.Unlock()
		return
	}
	c.isDone = true
	c.mu.Unlock()
	if err := c.h.stores.Events.End(context.WithoutCancel(ctx), c.sessionID, c.streamID); err != nil {
		c.h.log.Warn("end stream", "session", shortHash(c.sessionID), "error", err)
	}
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
	c.finish(context.Background())
	return nil
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
	if err := h.stores.Sessions.Update(ctx, sid, update); err != nil {
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
