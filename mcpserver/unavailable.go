package mcpserver

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// IsUnavailable reports whether err says that a store or service a handler
// needs cannot be reached: whether an error in its chain has a method
// Unavailable() bool that returns true (notes.ErrUnavailable is one). A
// tool, resource or prompt handler that returns such an error (a tool
// through its result's error, mcp.CallToolResult.GetError) gets its
// request answered as every other path that finds a store unreachable
// is: 503 with Retry-After, in both eras, unless the response has already
// started (a progress notification went out), in which case the response
// is a generic JSON-RPC error. Either way the error's text, which may
// name internal addresses, stays in the server's log.
func IsUnavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// msgUnavailable is the whole of what a client learns of an unreachable
// store.
const msgUnavailable = "service temporarily unavailable; retry later"

// writeUnavailable answers a request 503 with Retry-After.
func writeUnavailable(w http.ResponseWriter, id jsonrpc.ID) {
	w.Header().Set("Retry-After", "1")
	w.Header().Del("Cache-Control")
	w.Header().Del("Connection")
	writeRPCError(w, http.StatusServiceUnavailable, id, -32000, msgUnavailable)
}

// A requestHealth tells the HTTP layer, through the context of a POST's
// calls, that one of them found a store unreachable.
type requestHealth struct {
	mu          sync.Mutex
	unavailable bool
}

func (rh *requestHealth) set() {
	rh.mu.Lock()
	rh.unavailable = true
	rh.mu.Unlock()
}

func (rh *requestHealth) failed() bool {
	rh.mu.Lock()
	defer rh.mu.Unlock()
	return rh.unavailable
}

type healthKey struct{}

func withHealth(ctx context.Context) (context.Context, *requestHealth) {
	rh := &requestHealth{}
	return context.WithValue(ctx, healthKey{}, rh), rh
}

// catchUnavailable is the receiving middleware that turns a handler's
// unavailable error (IsUnavailable) into a generic JSON-RPC error and
// tells the HTTP layer, which answers 503 instead if it still can.
func (h *Handler) catchUnavailable(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if r, ok := res.(*mcp.CallToolResult); ok && err == nil && r != nil && r.IsError {
			err = r.GetError()
			if !IsUnavailable(err) {
				return res, nil
			}
		}
		if err == nil || !IsUnavailable(err) {
			return res, err
		}
		h.log.Error("store unavailable", "method", method, "error", err)
		if rh, ok := ctx.Value(healthKey{}).(*requestHealth); ok {
			rh.set()
		}
		return nil, &jsonrpc.Error{Code: -32000, Message: msgUnavailable}
	}
}

// An unavailableWriter is the ResponseWriter of a stateless POST: if a
// call of the request found a store unreachable before the response
// started, the response becomes a 503 with Retry-After, and what the
// go-sdk writes is dropped. It relies on two things the go-sdk does
// (v1.8.0): its stateless handler writes the status only with the first
// message (a request's result, unless progress or a log message came
// first), and the context of a method handler carries the values of the
// HTTP request's (where requestHealth travels). TestStoreUnavailable
// fails if either changes.
type unavailableWriter struct {
	http.ResponseWriter
	health  *requestHealth
	started bool
	refused bool
}

func (w *unavailableWriter) WriteHeader(code int) {
	if w.started {
		return
	}
	w.started = true
	if code == http.StatusOK && w.health.failed() {
		w.refused = true
		writeUnavailable(w.ResponseWriter, jsonrpc.ID{})
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *unavailableWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	if w.refused {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush implements http.Flusher (the SSE responses need it).
func (w *unavailableWriter) Flush() {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	if !w.refused {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap lets an http.ResponseController reach the connection.
func (w *unavailableWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
