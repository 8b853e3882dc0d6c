package mcpserver

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"time"
)

// endGrace is how long a detached stream that ends may take to write its
// last chunk to a client that does not read.
const endGrace = time.Second

// detach serves the GET stream s over its own connection, taken over from
// net/http, and reports whether it did: only an HTTP/1.1 request whose
// ResponseWriter can hijack is detached. net/http keeps a goroutine with
// a grown stack, 10 KiB of buffers and the request for the life of a
// response; a detached stream keeps the connection, a goroutine that reads
// its log (pump) and one that notices the client leaving (watchClient).
//
// The response is what net/http would have written (chunked, the headers
// set so far, Date), with "Connection: close": the connection ends with
// the stream. Handler.Close ends detached streams and waits for them,
// since http.Server.Shutdown no longer sees their connections.
func (h *Handler) detach(w http.ResponseWriter, r *http.Request, s *liveStream, after int64, priming bool) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return false
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache, no-transform")
	hdr.Set("X-Accel-Buffering", "no")
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false // not supported: served by the handler
	}
	// Whatever the client sends after its GET (it should send nothing)
	// is left unread, in net/http's buffer and on the connection.
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	hdr.Write(&head)
	head.WriteString("Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n")
	head.WriteString("Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
	if priming {
		head.Write(appendChunk(nil, []byte("id: "+formatEventID(standaloneStream, after)+"\ndata: \n\n")))
	}
	if _, err := conn.Write(head.Bytes()); err != nil {
		conn.Close()
		h.unregister(s)
		return true
	}
	cancel := s.cancel
	end := func() {
		cancel()
		// Unblock a write to a client that does not read.
		conn.SetWriteDeadline(time.Now().Add(endGrace))
	}
	h.getMu.Lock()
	if h.closing { // since openStandalone: end the response at once
		h.getMu.Unlock()
		h.unregister(s)
		endChunked(conn)
		conn.Close()
		return true
	}
	s.cancel = end
	if h.getLive[s.id] != s { // replaced or deleted meanwhile
		end()
	}
	h.detached.Add(1)
	h.getMu.Unlock()
	go h.pump(conn, s, after)
	go watchClient(conn, end)
	return true
}

// pump serves the detached stream s: its events after seq and keep-alives,
// one chunk per write, then the final chunk, and it closes the connection.
// (No defers: a panic ends the process anyway, and its frame stays small
// for the idle stream's stack.)
func (h *Handler) pump(conn net.Conn, s *liveStream, after int64) {
	h.stream(s, after, func(sse []byte) error {
		// A client that takes no chunk for two keep-alive intervals is
		// gone or stuck. Set before checking s.ctx: once end has run (it
		// cancels, then sets a shorter deadline), its deadline stays.
		conn.SetWriteDeadline(time.Now().Add(2 * h.opts.KeepAlive))
		if err := s.ctx.Err(); err != nil {
			return err
		}
		_, err := conn.Write(appendChunk(nil, sse))
		return err
	})
	h.unregister(s)
	endChunked(conn)
	conn.Close()
	h.detached.Done()
}

// endChunked writes the final chunk, giving the client endGrace to take it.
func endChunked(conn net.Conn) {
	conn.SetWriteDeadline(time.Now().Add(endGrace))
	conn.Write([]byte("0\r\n\r\n"))
}

// watchClient waits until the client of a detached stream goes away, or
// pump closes the connection, and ends the stream. A client that sends
// anything after its GET (the response is "Connection: close") ends it
// too: reading on, a byte at a time, would cost a system call per byte.
func watchClient(conn net.Conn, end func()) {
	var b [1]byte
	conn.Read(b[:])
	end()
}

// appendChunk appends p to dst as one chunk of a chunked HTTP/1.1 body.
func appendChunk(dst, p []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(p)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, p...)
	return append(dst, "\r\n"...)
}
