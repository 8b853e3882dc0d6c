package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// A replica serves its sessions' GET streams from one subscription to the
// Broadcaster: relayBroadcasts hands each broadcast to deliverBroadcast,
// which appends it to the log of every GET stream it concerns, and each
// stream reads it from there. An idle GET stream thus costs its request
// in net/http and a registry entry, not a subscription of its own.

// serveStandalone serves a session's GET stream: broadcasts relevant to the
// session are appended to its log (by deliverBroadcast) and delivered from
// there, so that they can be replayed. A newer GET for the same session
// replaces this one. The stream ends when the client goes away or the
// server shuts down (the request's context), when a newer GET replaces
// it, or when its session is deleted.
func (h *Handler) serveStandalone(w http.ResponseWriter, r *http.Request, sess *Session, after int64, priming bool) {
	s := h.openStandalone(w, r, sess)
	if s == nil {
		return
	}
	defer h.unregister(s)
	sse := startSSE(w, standaloneStream)
	defer h.streamOpened()()
	if priming {
		sse.prime(after)
	}
	if sse.flush() != nil {
		return
	}
	h.tailStandalone(s, sse, after)
}

// openStandalone registers and opens the GET stream of sess, or answers 503
// and returns nil. A GET that comes while the Handler closes, or once the
// http.Server has ended its streams (its request's context is done), is
// answered "server shutting down".
func (h *Handler) openStandalone(w http.ResponseWriter, r *http.Request, sess *Session) *liveStream {
	ctx, cancel := context.WithCancel(r.Context())
	s := &liveStream{id: sess.ID, subject: sess.Subject, ctx: ctx, cancel: cancel}
	if ctx.Err() != nil || !h.register(s) {
		cancel()
		w.Header().Set("Retry-After", "1")
		writeRPCError(w, http.StatusServiceUnavailable, jsonrpc.ID{}, -32000, "server shutting down")
		return nil
	}
	if !h.awaitBroadcasts(r.Context()) {
		h.unregister(s)
		w.Header().Set("Retry-After", "1")
		writeRPCError(w, http.StatusServiceUnavailable, jsonrpc.ID{}, -32000, "broadcast unavailable")
		return nil
	}
	// Opened with a check that the session still exists: its record may
	// come from the session cache, stale by up to sessionChecked or more.
	if _, err := h.writeStream(ctx, s.id, standaloneStream, &StreamWrite{Session: true}); err != nil {
		h.unregister(s)
		if errors.Is(err, ErrNotFound) {
			writeRPCError(w, http.StatusNotFound, jsonrpc.ID{}, codeSessionNotFound, "Session not found")
			return nil
		}
		w.Header().Set("Retry-After", "1")
		writeRPCError(w, http.StatusServiceUnavailable, jsonrpc.ID{}, -32000, "event log unavailable")
		return nil
	}
	return s
}

// tailStandalone writes the events of the GET stream s after seq, and a
// keep-alive comment when it has been idle for KeepAlive, until the
// stream ends or a write fails.
//
// A client that takes nothing for two keep-alive intervals is gone or
// stuck: each write has that long, and a write that times out ends the
// stream (net/http then closes the connection). The bound is lifted when
// the stream ends, since the connection may serve further requests.
func (h *Handler) tailStandalone(s *liveStream, sse *sseWriter, after int64) {
	defer sse.setWriteDeadline(time.Time{})
	lastWrite := time.Now()
	for {
		events, ended, err := h.stores.Events.Read(s.ctx, s.id, standaloneStream, after, h.opts.KeepAlive-time.Since(lastWrite))
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, ErrNotFound) {
				h.log.Warn("read event log", "session", shortHash(s.id), "error", err)
			}
			return
		}
		if len(events) == 0 && !ended && time.Since(lastWrite) < h.opts.KeepAlive {
			continue
		}
		if len(events) == 0 && ended {
			return
		}
		sse.setWriteDeadline(time.Now().Add(2 * h.opts.KeepAlive))
		if len(events) > 0 {
			after = events[len(events)-1].Seq
			err = sse.events(events)
		} else {
			err = sse.keepAlive()
		}
		if err != nil || sse.flush() != nil || ended {
			return
		}
		lastWrite = time.Now()
	}
}

// A liveStream is a session's GET stream being served by this replica.
type liveStream struct {
	id      string // the session
	subject string // its owner
	ctx     context.Context
	cancel  context.CancelFunc // ends the stream

}

// register makes s the session's GET stream on this replica, ending the
// one it replaces. It returns false, and ends s, if the Handler is closing.
func (h *Handler) register(s *liveStream) bool {
	h.getMu.Lock()
	defer h.getMu.Unlock()
	if h.closing {
		s.cancel()
		return false
	}
	if prev := h.getLive[s.id]; prev != nil {
		prev.cancel()
	}
	h.getLive[s.id] = s
	return true
}

// unregister ends s and forgets it unless a newer stream replaced it.
func (h *Handler) unregister(s *liveStream) {
	h.getMu.Lock()
	defer h.getMu.Unlock()
	s.cancel()
	if h.getLive[s.id] == s {
		delete(h.getLive, s.id)
	}
}

// broadcastWait bounds how long a GET waits for this replica's broadcast
// subscription (made at start, and again after it ends) before it is
// answered 503.
const broadcastWait = 2 * time.Second

// awaitBroadcasts reports whether this replica receives broadcasts, waiting
// up to broadcastWait for its subscription. A stream registered once it
// does receives every broadcast published after it registered.
func (h *Handler) awaitBroadcasts(ctx context.Context) bool {
	h.subMu.Lock()
	ready := h.subReady
	h.subMu.Unlock()
	select {
	case <-ready:
		return true
	default:
	}
	t := time.NewTimer(broadcastWait)
	defer t.Stop()
	select {
	case <-ready:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// setSubscribed records whether relayBroadcasts holds a subscription.
func (h *Handler) setSubscribed(on bool) {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	select {
	case <-h.subReady:
		if !on {
			h.subReady = make(chan struct{})
		}
	default:
		if on {
			close(h.subReady)
		}
	}
}

// fanOutQueue is how many broadcasts wait for deliverBroadcasts before
// further ones are dropped (and logged) rather than stalling the relay.
const fanOutQueue = 256

// fanOutWorkers bounds the store calls one broadcast makes at once: one
// append per concerned GET stream (and one session read per stream for a
// resource update).
const fanOutWorkers = 16

// deliverBroadcasts delivers the broadcasts of queue one after another, so
// that each stream logs them in the order they were received, until queue
// is closed. Once ctx ends (the Handler is closing) the rest is dropped.
func (h *Handler) deliverBroadcasts(ctx context.Context, queue <-chan Broadcast) {
	for b := range queue {
		if ctx.Err() == nil {
			h.deliverBroadcast(b)
		}
	}
}

// deliverBroadcast appends b to the log of each GET stream of this replica
// whose session it concerns.
func (h *Handler) deliverBroadcast(b Broadcast) {
	data := broadcastMessage(b)
	if data == nil {
		return
	}
	h.getMu.Lock()
	targets := make([]*liveStream, 0, len(h.getLive))
	for _, s := range h.getLive {
		if b.Owner == "" || b.Owner == s.subject {
			targets = append(targets, s)
		}
	}
	h.getMu.Unlock()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(fanOutWorkers, len(targets)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(targets) {
					return
				}
				if s := targets[i]; h.wants(s, b) {
					h.appendBroadcast(s.ctx, s.id, data)
				}
			}
		})
	}
	wg.Wait()
}

// broadcastMessage encodes the notification a broadcast becomes, or returns
// nil for a method GET streams do not carry.
func broadcastMessage(b Broadcast) []byte {
	var note *jsonrpc.Request
	switch b.Method {
	case "notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed":
		note = &jsonrpc.Request{Method: b.Method, Params: json.RawMessage(`{}`)}
	case "notifications/resources/updated":
		params, _ := json.Marshal(map[string]string{"uri": b.URI})
		note = &jsonrpc.Request{Method: b.Method, Params: params}
	default:
		return nil
	}
	data, err := jsonrpc.EncodeMessage(note)
	if err != nil {
		return nil
	}
	return data
}

// wants reports whether the session of s should get b, whose owner (if
// any) matched already. A resource update reaches only the sessions that
// subscribed to the URI.
func (h *Handler) wants(s *liveStream, b Broadcast) bool {
	if s.ctx.Err() != nil {
		return false // ended or replaced meanwhile
	}
	if b.Method != "notifications/resources/updated" {
		return true
	}
	cur, err := h.stores.Sessions.Get(s.ctx, s.id)
	return err == nil && slices.Contains(cur.Subscriptions, b.URI)
}

func (h *Handler) appendBroadcast(ctx context.Context, sid string, data []byte) {
	if _, err := h.stores.Events.WriteStream(ctx, sid, standaloneStream, &StreamWrite{Events: [][]byte{data}}); err != nil && ctx.Err() == nil {
		h.log.Warn("append broadcast", "session", shortHash(sid), "error", err)
	}
}
