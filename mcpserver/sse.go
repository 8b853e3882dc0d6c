package mcpserver

import (
	"net/http"
	"strconv"
	"time"
)

// An sseWriter writes the Server-Sent Events response of one stream
// through net/http: what it writes waits in the ResponseWriter's buffers
// until flush. Every SSE response of the endpoint is written by one.
//
// Each event carries an ID naming its stream and sequence number
// (formatEventID), so that a client reconnecting with Last-Event-ID
// resumes the right stream after the right event.
type sseWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	streamID string
}

// startSSE sets the headers of an SSE response carrying streamID's events
// and writes its status line. Nothing is sent until flush.
func startSSE(w http.ResponseWriter, streamID string) *sseWriter {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache, no-transform")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sseWriter{w: w, rc: http.NewResponseController(w), streamID: streamID}
}

// prime writes the priming event: an empty event whose ID is that of
// event seq, so that a client that reconnects before any event arrives
// resumes after seq. Revisions from 2025-11-25 expect one at the start of
// every stream (see primes).
func (s *sseWriter) prime(seq int64) error {
	buf := appendEventID([]byte("id: "), s.streamID, seq)
	buf = append(buf, "\ndata: \n\n"...)
	_, err := s.w.Write(buf)
	return err
}

// events writes events as "message" events, their data as it is (one JSON
// message, which holds no newline).
func (s *sseWriter) events(events []Event) error {
	if len(events) == 0 {
		return nil
	}
	var buf []byte
	for _, e := range events {
		buf = append(buf, "id: "...)
		buf = appendEventID(buf, s.streamID, e.Seq)
		buf = append(buf, "\nevent: message\ndata: "...)
		buf = append(buf, e.Data...)
		buf = append(buf, "\n\n"...)
	}
	_, err := s.w.Write(buf)
	return err
}

// keepAlive writes a comment, which clients ignore, so that proxies and
// clients see an idle stream is alive.
func (s *sseWriter) keepAlive() error {
	_, err := s.w.Write(keepAliveComment)
	return err
}

var keepAliveComment = []byte(": keep-alive\n\n")

// retry writes the reconnection delay d, which the client waits before it
// reconnects once the server closes the stream. A d of zero writes
// nothing.
func (s *sseWriter) retry(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	buf := append([]byte("retry: "), strconv.FormatInt(d.Milliseconds(), 10)...)
	_, err := s.w.Write(append(buf, "\n\n"...))
	return err
}

// flush sends what was written.
func (s *sseWriter) flush() error { return s.rc.Flush() }

// setWriteDeadline bounds the writes (and flushes) that follow; the zero
// time removes the bound.
func (s *sseWriter) setWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }
