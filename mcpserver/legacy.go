package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// standaloneStream is the stream ID of a session's GET stream. Request
// streams use rand.Text IDs, which never contain '_'.
const standaloneStream = "_"

// codeSessionNotFound is the TS SDK's code for an unknown session (with 404).
const codeSessionNotFound = -32001

func (h *Handler) legacyPOST(w http.ResponseWriter, r *http.Request, body []byte) {
	version := strings.TrimSpace(r.Header.Get(headerProtocolVersion))
	if version == "" || version == "2024-11-05" {
		// The transport's rule: without the header, assume 2025-03-26
		// (the header came later).
		version = Version20250326
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeRPCError(w, http.StatusUnsupportedMediaType, jsonrpc.ID{}, -32000, "Content-Type must be application/json")
		return
	}
	if jsonOK, sseOK := accepts(r.Header.Values("Accept")); !jsonOK || !sseOK {
		writeRPCError(w, http.StatusNotAcceptable, jsonrpc.ID{}, -32000, "Accept must list application/json and text/event-stream")
		return
	}
	msgs, isBatch, err := decodeBody(body, h.opts.MaxBatchMessages)
	var tooMany *batchTooLargeError
	if errors.As(err, &tooMany) {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, tooMany.Error())
		return
	}
	if err != nil {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.ID{}, jsonrpc.CodeParseError, "Parse error: "+err.Error())
		return
	}
	if isBatch && version != Version20250326 {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest,
			"JSON-RPC batches are only accepted for protocol version "+Version20250326)
		return
	}
	var calls []*jsonrpc.Request
	initialize := false
	for _, m := range msgs {
		if req, ok := m.(*jsonrpc.Request); ok && req.IsCall() {
			calls = append(calls, req)
			initialize = initialize || req.Method == "initialize"
		}
	}
	sid := r.Header.Get(headerSessionID)
	if sid == "" {
		if !initialize {
			writeRPCError(w, http.StatusBadRequest, jsonrpc.ID{}, -32000, "Bad Request: Mcp-Session-Id header is required; send initialize first")
			return
		}
		if len(msgs) != 1 {
			writeRPCError(w, http.StatusBadRequest, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest, "initialize must be sent alone")
			return
		}
		h.initialize(w, r, calls[0])
		return
	}
	sess, ok := h.lookup(w, r, sid)
	if !ok {
		return
	}
	if initialize {
		writeRPCError(w, http.StatusBadRequest, calls[0].ID, jsonrpc.CodeInvalidRequest, "session is already initialized")
		return
	}
	ctx := r.Context()
	for _, m := range msgs {
		switch m := m.(type) {
		case *jsonrpc.Response:
			// A client's answer to a server-to-client request, wherever it waits.
			data, _ := jsonrpc.EncodeMessage(m)
			if err := h.stores.Inbox.Deliver(ctx, sid, "resp:"+idKey(m.ID), data); err != nil && !errors.Is(err, ErrNotFound) {
				h.log.Warn("route response", "session", shortHash(sid), "error", err)
			}
		case *jsonrpc.Request:
			if m.IsCall() {
				continue
			}
			h.legacyNotification(ctx, sess, m)
		}
	}
	if len(calls) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	// The session's negotiated version decides the stream's features; the
	// header is only a fallback (some clients send a stale one).
	if v := sess.State.NegotiatedProtocolVersion; v != "" {
		version = v
	}
	h.serveCalls(w, r, sess, calls, version)
}

func (h *Handler) legacyNotification(ctx context.Context, sess *Session, m *jsonrpc.Request) {
	switch m.Method {
	case "notifications/initialized":
		if sess.State.InitializedParams == nil {
			err := h.stores.Sessions.Update(ctx, sess.ID, func(s *Session) { s.State.InitializedParams = &mcp.InitializedParams{} })
			// Other replicas may keep a record without it for a while:
			// serveCalls tolerates that.
			h.cache.forget(sessionHash(sess.ID))
			if err != nil {
				h.log.Warn("mark initialized", "session", shortHash(sess.ID), "error", err)
			}
		}
	case "notifications/cancelled":
		var p struct {
			RequestID any `json:"requestId"`
		}
		if json.Unmarshal(m.Params, &p) != nil {
			return
		}
		id, err := jsonrpc.MakeID(p.RequestID)
		if err != nil {
			return
		}
		data, _ := jsonrpc.EncodeMessage(m)
		// Nobody listening means the request already finished: not an error.
		_ = h.stores.Inbox.Deliver(ctx, sess.ID, "req:"+idKey(id), data)
	}
}

// lookup loads the session named by the request and checks that the caller
// owns it. A missing, expired or foreign session is 404 alike, so that a
// session's existence is never revealed to another user.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request, sid string) (*Session, bool) {
	if !validSessionID(sid) {
		writeRPCError(w, http.StatusNotFound, jsonrpc.ID{}, codeSessionNotFound, "Session not found")
		return nil, false
	}
	sess, err := h.session(r.Context(), sid)
	if errors.Is(err, ErrNotFound) || (err == nil && sess.Subject != subjectOf(r.Context())) {
		writeRPCError(w, http.StatusNotFound, jsonrpc.ID{}, codeSessionNotFound, "Session not found")
		return nil, false
	}
	if err != nil {
		h.log.Error("load session", "session", shortHash(sid), "error", err)
		w.Header().Set("Retry-After", "1")
		writeRPCError(w, http.StatusServiceUnavailable, jsonrpc.ID{}, -32000, "session store unavailable")
		return nil, false
	}
	return sess, true
}

func (h *Handler) initialize(w http.ResponseWriter, r *http.Request, call *jsonrpc.Request) {
	var params mcp.InitializeParams
	if err := json.Unmarshal(call.Params, &params); err == nil {
		if _, err := keptInitializeParams(&params); err != nil {
			writeRPCError(w, http.StatusBadRequest, call.ID, jsonrpc.CodeInvalidParams, "Invalid params: "+err.Error())
			return
		}
	} // else the go-sdk answers the bad params
	sess := &Session{ID: rand.Text(), Subject: subjectOf(r.Context()), View: h.view(r.Context()), CreatedAt: time.Now().UTC()}
	err := h.stores.Sessions.Create(r.Context(), sess)
	if errors.Is(err, ErrSessionLimit) {
		writeRPCError(w, http.StatusTooManyRequests, call.ID, -32000,
			"too many open sessions: this user has as many sessions as the server allows; end unused ones (HTTP DELETE with their Mcp-Session-Id) or wait for them to expire")
		return
	}
	if err != nil {
		h.log.Error("create session", "error", err)
		w.Header().Set("Retry-After", "1")
		writeRPCError(w, http.StatusServiceUnavailable, call.ID, -32000, "session store unavailable")
		return
	}
	if o := h.opts.Observer; o != nil {
		o.Session(true)
	}
	w.Header().Set(headerSessionID, sess.ID)
	h.serveCalls(w, r, sess, []*jsonrpc.Request{call}, "")
}

// serveCalls runs the calls of one POST through a go-sdk ServerSession rebuilt
// from the session record, and streams what it writes back as SSE (or, for
// initialize, as one JSON response).
//
// Rebuilding works around a go-sdk limitation: its stateful sessions live
// in the memory of the process that initialized them, so a session cannot
// move between replicas (upstream: the proposal of shared session
// storage, https://github.com/modelcontextprotocol/go-sdk/issues/148,
// closed, and the open pull request for distributed sessions,
// https://github.com/modelcontextprotocol/go-sdk/pull/232). So the state
// the go-sdk keeps (ServerSessionState: the initialize params, the
// negotiated version, the log level) is stored in the session record, and
// every request connects a new ServerSession with it
// (ServerSessionOptions.State) that serves the request's calls without a
// handshake and is closed at its end. The go-sdk test
// TestGoSDKRebuildsSessionsFromState fails if the state stops surviving the
// store (JSON) or serving calls; go-sdk sessions that can live in a shared
// store would replace the rebuilding.
func (h *Handler) serveCalls(w http.ResponseWriter, r *http.Request, sess *Session, calls []*jsonrpc.Request, version string) {
	streamID := rand.Text()
	extra := mcp.RequestExtra{TokenInfo: auth.TokenInfoFromContext(r.Context()), Header: r.Header}
	c, err := newConn(h, sess.ID, streamID, calls, extra)
	if err != nil {
		h.log.Error("open request stream", "error", err)
		w.Header().Set("Retry-After", "1")
		writeRPCError(w, http.StatusServiceUnavailable, jsonrpc.ID{}, -32000, "session store unavailable")
		return
	}
	var opts *mcp.ServerSessionOptions
	isInit := len(calls) == 1 && calls[0].Method == "initialize"
	if !isInit {
		state := sess.State
		if state.InitializeParams != nil && state.InitializedParams == nil {
			// Tolerate clients that skip notifications/initialized: the
			// go-sdk means to refuse server-to-client requests (an
			// elicitation) until it has it (a TODO in its
			// ServerSession.checkInitialized; no upstream issue found).
			// TestGoSDKRebuildsSessionsFromState tells when it does.
			state.InitializedParams = &mcp.InitializedParams{}
		}
		if state.LogLevel == "" {
			state.LogLevel = "info"
		}
		opts = &mcp.ServerSessionOptions{State: &state}
	}
	if !isInit {
		h.announceView(r.Context(), sess, c)
	}
	ctx, health := withHealth(context.WithValue(context.WithoutCancel(r.Context()), sessionKey{}, sess.ID))
	ss, err := h.server.Connect(ctx, c, opts)
	if err != nil {
		c.Close()
		h.log.Error("connect session", "error", err)
		writeRPCError(w, http.StatusInternalServerError, jsonrpc.ID{}, jsonrpc.CodeInternalError, "internal error")
		return
	}
	go func() {
		t := time.NewTimer(h.opts.MaxRequestDuration)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
			h.log.Warn("legacy request timed out", "session", shortHash(sess.ID))
		}
		ss.Close()
		c.finish()
	}()
	defer c.detach()
	if isInit {
		h.writeJSON(w, r, c)
		return
	}
	delay := time.AfterFunc(h.opts.StreamDelay, c.open)
	defer delay.Stop()
	h.sendStream(w, r, c, health, primes(version))
}

// primes reports whether the revision expects SSE priming events (SEP-1699).
func primes(version string) bool { return version >= Version20251125 }

// writeJSON waits for the end of an unlogged request (initialize) and
// writes its last message, the response, as JSON.
func (h *Handler) writeJSON(w http.ResponseWriter, r *http.Request, c *conn) {
	var last []byte
	for {
		events, phase, changed := c.take()
		for _, e := range events {
			last = e.Data
		}
		if phase == streamFailed {
			h.writeStreamError(w, c.failure())
			return
		}
		if phase == streamEnded {
			break
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(last)
}

// writeStreamError answers a request whose stream could not be written:
// 404 if its session is gone, else 503.
func (h *Handler) writeStreamError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNotFound) {
		writeRPCError(w, http.StatusNotFound, jsonrpc.ID{}, codeSessionNotFound, "Session not found")
		return
	}
	h.log.Error("write request stream", "error", err)
	w.Header().Set("Retry-After", "1")
	writeRPCError(w, http.StatusServiceUnavailable, jsonrpc.ID{}, -32000, "session store unavailable")
}

// sendStream writes the SSE response of a request from memory: once its
// stream is open (or the request over), every message as it is logged
// (or 503, if a call found a store unreachable by then: IsUnavailable),
// until the stream ends, the client goes away, or the request closes the
// connection (SEP-1699). The request runs on if the client goes away.
func (h *Handler) sendStream(w http.ResponseWriter, r *http.Request, c *conn, health *requestHealth, priming bool) {
	ctx := r.Context()
	if !c.opened(ctx) {
		return
	}
	events, phase, changed := c.take()
	if phase == streamFailed {
		h.writeStreamError(w, c.failure())
		return
	}
	if health.failed() {
		// A call found a store unreachable before the stream started:
		// answered as the session store's failures are.
		writeUnavailable(w, jsonrpc.ID{})
		return
	}
	sse := startSSE(w, c.streamID)
	defer h.streamOpened()()
	if priming {
		sse.prime(0)
	}
	var after int64
	keepAlive := time.NewTimer(h.opts.KeepAlive)
	defer keepAlive.Stop()
	for first := true; ; first = false {
		if len(events) > 0 || first {
			if err := sse.events(events); err != nil {
				return
			}
			if err := sse.flush(); err != nil {
				return
			}
			keepAlive.Reset(h.opts.KeepAlive)
		}
		if len(events) > 0 {
			after = events[len(events)-1].Seq
		}
		if phase == streamEnded {
			return
		}
		if phase == streamLost {
			// A write to the log failed: go on from the log.
			h.follow(r, sse, c.sessionID, after, c.closeHTTP, true)
			return
		}
		select {
		case <-changed:
		case <-keepAlive.C:
			if sse.keepAlive() != nil || sse.flush() != nil {
				return
			}
			keepAlive.Reset(h.opts.KeepAlive)
		case d := <-c.closeHTTP:
			writeRetry(sse, d)
			return
		case <-ctx.Done():
			return
		}
		events, phase, changed = c.take()
	}
}

// writeRetry tells the client when to reconnect (SEP-1699), before the
// server closes the connection.
func writeRetry(sse *sseWriter, d time.Duration) {
	if d > 0 && sse.retry(d) == nil {
		sse.flush()
	}
}

// tail writes the events of a stream after seq as SSE from the log until
// the stream ends, the client goes away, or the server closes the
// connection (SEP-1699). A resumed request stream is watched: if the
// replica running the request stopped renewing its lease, its unanswered
// requests are answered here.
func (h *Handler) tail(w http.ResponseWriter, r *http.Request, sessionID, streamID string, after int64, priming, resumed bool) {
	sse := startSSE(w, streamID)
	defer h.streamOpened()()
	if priming {
		sse.prime(after)
	}
	if sse.flush() != nil {
		return
	}
	h.follow(r, sse, sessionID, after, nil, resumed)
}

// follow is tail once the response has started.
func (h *Handler) follow(r *http.Request, sse *sseWriter, sessionID string, after int64, closeHTTP <-chan time.Duration, resumed bool) {
	streamID := sse.streamID
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var retry time.Duration
	closed := make(chan struct{})
	if closeHTTP != nil {
		go func() {
			select {
			case d := <-closeHTTP:
				retry = d
				close(closed)
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	watch := resumed
	lastWrite := time.Now()
	var nextCheck time.Time // of the lease; the first idle read checks it
	for {
		wait := h.opts.KeepAlive - time.Since(lastWrite)
		if watch {
			wait = min(wait, time.Until(nextCheck))
		}
		events, ended, err := h.stores.Events.Read(ctx, sessionID, streamID, after, wait)
		if err != nil {
			select {
			case <-closed:
				writeRetry(sse, retry)
			default:
				if ctx.Err() == nil && !errors.Is(err, ErrNotFound) {
					h.log.Warn("read event log", "session", shortHash(sessionID), "error", err)
				}
			}
			return
		}
		if len(events) > 0 {
			after = events[len(events)-1].Seq
		}
		if len(events) == 0 && !ended {
			if watch && !time.Now().Before(nextCheck) {
				nextCheck = time.Now().Add(h.opts.LeaseTTL / 2)
				if h.rescue(ctx, sessionID, streamID) {
					continue // read what it appended
				}
			}
			if time.Since(lastWrite) < h.opts.KeepAlive {
				continue
			}
			err = sse.keepAlive()
		} else {
			err = sse.events(events)
		}
		if err != nil {
			return
		}
		if err := sse.flush(); err != nil || ended {
			return
		}
		lastWrite = time.Now()
	}
}

// errAbandoned is the message of the error response to a request whose
// replica stopped (died) before answering it.
const errAbandoned = "the server running this request stopped before answering; retry it"

// rescue finishes a request stream whose writer lease lapsed: the replica
// running its requests stopped without ending it. If this replica wins the
// lease, it answers every request of the stream that has no response yet
// with an error, and ends the stream. It reports whether it did. A stream
// without a lease is left alone.
func (h *Handler) rescue(ctx context.Context, sessionID, streamID string) bool {
	_, ids, live, err := h.stores.Leases.LeaseHolder(ctx, sessionID, streamID)
	if err != nil || live {
		if err != nil && !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
			h.log.Warn("read stream lease", "session", shortHash(sessionID), "error", err)
		}
		return false
	}
	owner := rand.Text()
	won, err := h.stores.Leases.Lease(ctx, sessionID, streamID, owner, ids, h.opts.LeaseTTL)
	if err != nil || !won {
		return false
	}
	// The lease is ours: finish the job even if our client goes away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.LeaseTTL)
	defer cancel()
	events, ended, err := h.stores.Events.Read(ctx, sessionID, streamID, 0, 0)
	if err != nil || ended {
		return err == nil
	}
	answered := map[string]bool{}
	for _, e := range events {
		if resp, ok := decodeResponse(e.Data); ok {
			answered[idKey(resp.ID)] = true
		}
	}
	h.log.Warn("answering the requests of an abandoned stream", "session", shortHash(sessionID))
	w := &StreamWrite{Owner: owner, IDs: ids, LeaseTTL: h.opts.LeaseTTL, End: true}
	for _, raw := range ids {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			continue
		}
		id, err := jsonrpc.MakeID(v)
		if err != nil || answered[idKey(id)] {
			continue
		}
		data, _ := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: errAbandoned}})
		w.Events = append(w.Events, data)
	}
	// One write, under the lease just won: the answers and the end.
	if _, err := h.stores.Events.WriteStream(ctx, sessionID, streamID, w); err != nil {
		// Ended meanwhile (the writer was alive after all), or the store
		// failed: the next lapse check tries again if needed.
		h.log.Warn("answer abandoned requests", "session", shortHash(sessionID), "error", err)
		return false
	}
	return true
}

// decodeResponse decodes data if it is a JSON-RPC response.
func decodeResponse(data []byte) (*jsonrpc.Response, bool) {
	m, err := jsonrpc.DecodeMessage(data)
	if err != nil {
		return nil, false
	}
	resp, ok := m.(*jsonrpc.Response)
	return resp, ok
}

func (h *Handler) legacyGET(w http.ResponseWriter, r *http.Request) {
	if _, sseOK := accepts(r.Header.Values("Accept")); !sseOK {
		writeRPCError(w, http.StatusNotAcceptable, jsonrpc.ID{}, -32000, "Accept must list text/event-stream")
		return
	}
	sid := r.Header.Get(headerSessionID)
	if sid == "" {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.ID{}, -32000, "Bad Request: Mcp-Session-Id header is required")
		return
	}
	sess, ok := h.lookup(w, r, sid)
	if !ok {
		return
	}
	version := sess.State.NegotiatedProtocolVersion
	if version == "" {
		version = r.Header.Get(headerProtocolVersion)
	}
	after := int64(-1)
	if lei := r.Header.Get(headerLastEventID); lei != "" {
		s, seq, ok := ParseEventID(lei)
		if !ok {
			writeRPCError(w, http.StatusBadRequest, jsonrpc.ID{}, -32000, "Bad Request: malformed Last-Event-ID")
			return
		}
		if s != standaloneStream {
			if _, _, err := h.stores.Events.Read(r.Context(), sid, s, seq, 0); err == nil {
				h.tail(w, r, sid, s, seq, false, true) // resume a request stream
				return
			}
			// The stream is gone (expired or never ours): open a fresh GET stream.
		} else {
			after = seq
		}
	}
	if after < 0 {
		// A new GET stream starts at the present, without replaying history.
		after = 0
		if events, _, err := h.stores.Events.Read(r.Context(), sid, standaloneStream, 0, 0); err == nil && len(events) > 0 {
			after = events[len(events)-1].Seq
		}
	}
	h.serveStandalone(w, r, sess, after, primes(version))
}

func (h *Handler) legacyDELETE(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get(headerSessionID)
	if sid == "" {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.ID{}, -32000, "Bad Request: Mcp-Session-Id header is required")
		return
	}
	if _, ok := h.lookup(w, r, sid); !ok {
		return
	}
	if err := h.stores.Sessions.Delete(r.Context(), sid); err != nil {
		w.Header().Set("Retry-After", "1")
		writeRPCError(w, http.StatusServiceUnavailable, jsonrpc.ID{}, -32000, "session store unavailable")
		return
	}
	h.sessionChanged(r.Context(), sid)
	if o := h.opts.Observer; o != nil {
		o.Session(false)
	}
	if err := h.stores.Events.DeleteSession(r.Context(), sid); err != nil {
		h.log.Warn("delete event log", "session", shortHash(sid), "error", err)
	}
	h.getMu.Lock()
	if live := h.getLive[sid]; live != nil {
		live.cancel()
		delete(h.getLive, sid)
	}
	h.getMu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// A batchTooLargeError refuses a batch of more messages than allowed.
type batchTooLargeError struct{ n, max int }

func (e *batchTooLargeError) Error() string {
	return fmt.Sprintf("batch of %d messages refused: at most %d messages are accepted in one batch; send the rest in further requests", e.n, e.max)
}

// decodeBody parses one JSON-RPC message or a batch of at most maxBatch
// messages (a *batchTooLargeError beyond, before any is decoded).
func decodeBody(body []byte, maxBatch int) (msgs []jsonrpc.Message, isBatch bool, err error) {
	trimmed := strings.TrimLeft(string(body), " \t\r\n")
	if strings.HasPrefix(trimmed, "[") {
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, true, err
		}
		if len(raws) == 0 {
			return nil, true, errors.New("empty batch")
		}
		if len(raws) > maxBatch {
			return nil, true, &batchTooLargeError{len(raws), maxBatch}
		}
		for _, raw := range raws {
			m, err := jsonrpc.DecodeMessage(raw)
			if err != nil {
				return nil, true, err
			}
			msgs = append(msgs, m)
		}
		return msgs, true, nil
	}
	m, err := jsonrpc.DecodeMessage(body)
	if err != nil {
		return nil, false, err
	}
	return []jsonrpc.Message{m}, false, nil
}

// accepts reports whether an Accept header admits JSON and SSE.
func accepts(values []string) (jsonOK, sseOK bool) {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			switch strings.ToLower(strings.TrimSpace(mt)) {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				sseOK = true
			case "*/*":
				jsonOK, sseOK = true, true
			}
		}
	}
	return jsonOK, sseOK
}

// validSessionID reports whether id could be one we minted: visible ASCII
// (0x21-0x7E), bounded length.
func validSessionID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// formatEventID names event seq of a stream; the stream is encoded so that a
// Last-Event-ID resumes the right one (2025-11-25 SHOULD).
func formatEventID(streamID string, seq int64) string {
	return string(appendEventID(nil, streamID, seq))
}

// appendEventID appends the ID of event seq of a stream to buf.
func appendEventID(buf []byte, streamID string, seq int64) []byte {
	buf = append(buf, streamID...)
	buf = append(buf, '-')
	return strconv.AppendInt(buf, seq, 10)
}

// ParseEventID splits a Last-Event-ID into stream and sequence number.
func ParseEventID(id string) (streamID string, seq int64, ok bool) {
	if len(id) > 200 {
		return "", 0, false
	}
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return "", 0, false
	}
	streamID = id[:i]
	seq, err := strconv.ParseInt(id[i+1:], 10, 64)
	if err != nil || seq < 0 || (streamID != standaloneStream && !validSessionID(streamID)) || strings.ContainsRune(streamID, '-') {
		return "", 0, false
	}
	return streamID, seq, true
}

// idKey is a canonical string for a JSON-RPC ID: 1 and "1" differ.
func idKey(id jsonrpc.ID) string {
	b, _ := json.Marshal(id.Raw())
	return string(b)
}

// sessionKey carries the legacy session ID in a request's context.
type sessionKey struct{}

// SessionIDFromContext returns the legacy session ID of the request being
// served, if any.
func SessionIDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(sessionKey{}).(string)
	return id, ok
}
