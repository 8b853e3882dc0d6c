package mcpserver

import (
	"context"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// An Era is the protocol era of a request.
type Era uint8

// The eras of Era.
const (
	// EraStateless is the 2026-07-28 revision.
	EraStateless Era = iota
	// EraLegacy is the session-based revisions (2025-03-26 to 2025-11-25).
	EraLegacy
)

// String returns the era's label: "2026-07-28" or "legacy".
func (e Era) String() string {
	if e == EraLegacy {
		return "legacy"
	}
	return Version20260728
}

// An Observer is told what the Handler serves, for metrics. Its methods
// are called on the request path and must be cheap and safe for
// concurrent use. Options.Observer nil means no observer.
type Observer interface {
	// Request is called once for every JSON-RPC request and notification
	// the MCP server handled, after its handler returned: its era, its
	// method (as the client sent it: unbounded), its result and error
	// (for a tools/call, res is an *mcp.CallToolResult whose IsError
	// tells a tool's failure apart from a protocol error), and how long
	// it took.
	Request(era Era, method string, req mcp.Request, res mcp.Result, err error, d time.Duration)
	// Stream is called with +1 when this replica opens an SSE response
	// stream and with -1 when that stream ends.
	Stream(delta int)
	// Session is called when a legacy session is created (true) or
	// ended by its client's DELETE (false).
	Session(created bool)
}

// observe is the outermost receiving middleware when an Observer is set.
func (h *Handler) observe(next mcp.MethodHandler) mcp.MethodHandler {
	o := h.opts.Observer
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		start := time.Now()
		res, err := next(ctx, method, req)
		era := EraStateless
		if ctx.Value(sessionKey{}) != nil {
			era = EraLegacy
		}
		o.Request(era, method, req, res, err, time.Since(start))
		return res, err
	}
}

// streamOpened tells the observer that an SSE stream opened; the function
// it returns tells it that the stream ended.
func (h *Handler) streamOpened() func() {
	o := h.opts.Observer
	if o == nil {
		return func() {}
	}
	o.Stream(1)
	return func() { o.Stream(-1) }
}

// ActiveSessions returns how many legacy sessions this replica served in
// the last 30 seconds (sessionFetched: the fresh records of its session
// cache; none while the broadcasts that keep that cache true are down).
// It reads every cached record: for a metrics scrape, not the request
// path.
func (h *Handler) ActiveSessions() int {
	h.cache.mu.Lock()
	defer h.cache.mu.Unlock()
	return h.cache.m.Live(h.cache.now())
}
