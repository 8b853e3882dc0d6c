package mcpserver

import (
	"context"
	"io"
	"maps"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ownerMetaKey tags a resource-updated notification with the subject allowed
// to see it; filterOwnedNotifications strips it before it reaches the wire.
//
// The tag works around a go-sdk limitation: Server.ResourceUpdated sends
// the update to every session subscribed to the URI (by resources/subscribe
// or a 2026-07-28 subscriptions/listen), and can be told neither a session
// nor a user to limit it to, nor given a context that reaches the sending
// middleware (upstream: https://github.com/modelcontextprotocol/go-sdk/issues/1265). So the owner
// travels in the params' _meta, and a sending middleware drops the update
// on every other session. It relies on the go-sdk handing legacy sessions
// one shared params value (the tag is never stripped in place), on the two
// request shapes filterOwnedNotifications knows, and on a middleware that
// returns without calling next sending nothing; the go-sdk test
// TestGoSDKResourceUpdatedGoesToEverySubscriber fails if any of that
// changes. A go-sdk way to notify one session would replace the tag and
// the filter.
const ownerMetaKey = "remotemcp/owner"

// A Notifier tells clients that a user's resource changed. It satisfies the
// consumer-side interfaces of the tools and resources packages.
type Notifier struct{ b Broadcaster }

// NewNotifier returns a Notifier publishing through b.
func NewNotifier(b Broadcaster) *Notifier { return &Notifier{b: b} }

// ResourceUpdated announces that owner's resource uri changed. Only owner's
// subscribed sessions and subscriptions/listen streams receive it, on every
// replica.
func (n *Notifier) ResourceUpdated(ctx context.Context, owner, uri string) error {
	return n.b.Publish(ctx, Broadcast{Method: "notifications/resources/updated", URI: uri, Owner: owner})
}

// relayBroadcasts receives what is published anywhere: resource updates go
// to the go-sdk, which delivers them to this replica's 2026-07-28 listen
// streams, and every broadcast goes to deliverBroadcasts, for the legacy GET
// streams this replica serves.
func (h *Handler) relayBroadcasts(ctx context.Context) {
	defer close(h.done)
	queue := make(chan Broadcast, fanOutQueue)
	var wg sync.WaitGroup
	wg.Go(func() { h.deliverBroadcasts(ctx, queue) })
	defer wg.Wait()
	defer close(queue)
	// The subscription is kept for the Handler's life: if the store
	// cannot subscribe (Redis down at start) or the subscription ends
	// (Redis restarted), it is made again, with backoff.
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if h.relayOnce(ctx, queue) {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// relayOnce relays broadcasts until the subscription ends; it reports
// whether it subscribed at all.
func (h *Handler) relayOnce(ctx context.Context, queue chan<- Broadcast) bool {
	msgs, stop, err := h.stores.Broadcaster.Subscribe(ctx)
	if err != nil {
		h.log.Error("subscribe to broadcasts; retrying", "error", err)
		return false
	}
	defer stop()
	h.setSubscribed(true)
	defer h.setSubscribed(false)
	// The session cache is used only while its invalidations arrive.
	h.cache.setLive(true)
	defer h.cache.setLive(false)
	for {
		select {
		case <-ctx.Done():
			return true
		case b, ok := <-msgs:
			if !ok {
				if ctx.Err() == nil {
					h.log.Warn("broadcast subscription ended; subscribing again")
				}
				return true
			}
			if b.Method == methodSessionChanged {
				h.cache.forget(b.Session)
				continue
			}
			select {
			case queue <- b:
			default:
				h.log.Warn("broadcast dropped: the GET streams' fan-out is behind", "method", b.Method)
			}
			if b.Method != "notifications/resources/updated" {
				continue
			}
			params := &mcp.ResourceUpdatedNotificationParams{URI: b.URI}
			if b.Owner != "" {
				params.Meta = mcp.Meta{ownerMetaKey: b.Owner}
			}
			h.server.ResourceUpdated(ctx, params)
		}
	}
}

// trackListeners remembers whose subscriptions/listen stream each session is.
func (h *Handler) trackListeners(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method != "subscriptions/listen" {
			return next(ctx, method, req)
		}
		ss, _ := req.GetSession().(*mcp.ServerSession)
		if p := ss.InitializeParams(); p == nil || p.ProtocolVersion < Version20260728 {
			// A legacy session has GET streams and resources/subscribe;
			// listen is the stateless era's.
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "subscriptions/listen is a " + Version20260728 + " method; legacy sessions use resources/subscribe"}
		}
		sub := Anonymous
		if extra := req.GetExtra(); extra != nil && extra.TokenInfo != nil && extra.TokenInfo.UserID != "" {
			sub = extra.TokenInfo.UserID
		}
		h.listenMu.Lock()
		h.listenOwners[ss] = sub
		h.listenMu.Unlock()
		defer func() {
			h.listenMu.Lock()
			delete(h.listenOwners, ss)
			h.listenMu.Unlock()
		}()
		return next(ctx, method, req)
	}
}

// filterOwnedNotifications drops an owner-tagged resource update on every
// session but the owner's, and strips the tag.
func (h *Handler) filterOwnedNotifications(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method != "notifications/resources/updated" {
			return next(ctx, method, req)
		}
		p, ok := req.GetParams().(*mcp.ResourceUpdatedNotificationParams)
		if !ok || p.Meta == nil {
			return next(ctx, method, req)
		}
		owner, tagged := p.Meta[ownerMetaKey]
		if !tagged {
			return next(ctx, method, req)
		}
		ss, _ := req.GetSession().(*mcp.ServerSession)
		h.listenMu.Lock()
		sub, live := h.listenOwners[ss]
		h.listenMu.Unlock()
		if !live || sub != owner {
			return nil, nil
		}
		// The go-sdk shares p among sessions: send an untagged copy, never
		// strip the tag in place (the next session's filter needs it).
		untagged := *p
		untagged.Meta = maps.Clone(p.Meta)
		delete(untagged.Meta, ownerMetaKey)
		switch r := req.(type) {
		case *mcp.ServerRequest[*mcp.ResourceUpdatedNotificationParams]:
			return next(ctx, method, &mcp.ServerRequest[*mcp.ResourceUpdatedNotificationParams]{Session: r.Session, Params: &untagged, Extra: r.Extra})
		case *mcp.ServerRequest[mcp.Params]:
			return next(ctx, method, &mcp.ServerRequest[mcp.Params]{Session: r.Session, Params: &untagged, Extra: r.Extra})
		}
		return nil, nil // an unknown shape: drop rather than leak
	}
}

// startTap connects an internal legacy-era session to the server. The go-sdk
// sends it every list-changed notification, which it publishes to the
// Broadcaster for the GET streams of legacy sessions on every replica.
//
// The tap works around a go-sdk limitation: when a tool, prompt or resource
// is added or removed, the go-sdk tells only the sessions connected at that
// moment (legacy-era ones unconditionally, 2026-07-28 ones through
// subscriptions/listen), and offers neither a hook on the change nor a way
// to send the notification by hand (upstream:
// https://github.com/modelcontextprotocol/go-sdk/issues/666). A legacy session here is connected only
// while one of its requests runs, so a permanent legacy-era session catches
// the notification for all of them. The go-sdk test
// TestGoSDKListChangedReachesConnectedLegacySessions fails if that stops
// working; a change hook upstream would replace the tap.
func (h *Handler) startTap(ctx context.Context) func() {
	t := &tapConn{h: h, ctx: ctx, done: make(chan struct{})}
	ss, err := h.server.Connect(ctx, t, &mcp.ServerSessionOptions{State: &mcp.ServerSessionState{
		InitializeParams:  &mcp.InitializeParams{ProtocolVersion: Version20251125, Capabilities: &mcp.ClientCapabilities{}},
		InitializedParams: &mcp.InitializedParams{},
		LogLevel:          "emergency",
	}})
	if err != nil {
		h.log.Error("connect list-change tap", "error", err)
		return func() {}
	}
	return func() { ss.Close() }
}

type tapConn struct {
	h    *Handler
	ctx  context.Context
	done chan struct{}
	// closeOnce guards done: the go-sdk may close the connection from a
	// goroutine of its own while startTap's stop closes the session.
	closeOnce sync.Once
}

func (t *tapConn) Connect(context.Context) (mcp.Connection, error) { return t, nil }
func (t *tapConn) SessionID() string                               { return "" }
func (t *tapConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case <-t.done:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
func (t *tapConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	if req, ok := msg.(*jsonrpc.Request); ok && !req.IsCall() && broadcastMethods[req.Method] && req.Method != "notifications/resources/updated" {
		return t.h.stores.Broadcaster.Publish(t.ctx, Broadcast{Method: req.Method})
	}
	return nil
}
func (t *tapConn) Close() error {
	t.closeOnce.Do(func() { close(t.done) })
	return nil
}
