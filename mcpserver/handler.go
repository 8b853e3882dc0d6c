package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"
)

// Protocol revisions served by the one endpoint.
const (
	Version20260728 = "2026-07-28" // stateless
	Version20251125 = "2025-11-25"
	Version20250618 = "2025-06-18"
	Version20250326 = "2025-03-26"
)

// LegacyVersions are the session-based revisions, newest first.
var LegacyVersions = []string{Version20251125, Version20250618, Version20250326}

// SupportedVersions is every revision the endpoint serves, newest first. Use it
// for mcp.ServerOptions.SupportedProtocolVersions.
var SupportedVersions = []string{Version20260728, Version20251125, Version20250618, Version20250326}

// Anonymous is the subject of requests that carry no token (auth "none").
const Anonymous = "anonymous"

const (
	headerProtocolVersion = "Mcp-Protocol-Version"
	headerSessionID       = "Mcp-Session-Id"
	headerLastEventID     = "Last-Event-Id"
	metaProtocolVersion   = "io.modelcontextprotocol/protocolVersion"

	// DefaultMaxBodyBytes is the default request body limit.
	DefaultMaxBodyBytes = 4 << 20
	// DefaultMaxBatchMessages is the default limit on the messages of a
	// 2025-03-26 JSON-RPC batch.
	DefaultMaxBatchMessages = 100
	// DefaultMaxResponseBytes is the default limit on the bytes a legacy
	// request's responses and notifications may produce.
	DefaultMaxResponseBytes = 16 << 20
)

// Options configures a Handler. Zero fields mean the documented defaults.
type Options struct {
	// AllowedOrigins lists exact origins ("https://app.example.com") whose
	// browser requests are accepted. A request with any other Origin header
	// gets 403. Requests without an Origin header (non-browser clients) pass.
	AllowedOrigins []string
	// AllowLoopbackOrigins also accepts any http(s) origin on localhost,
	// 127.0.0.0/8 or [::1], on any port: the default for a loopback listener.
	AllowLoopbackOrigins bool
	// AllowedHosts, if not empty, lists the host names (without port) the
	// Host header may carry; anything else gets 403. Set it for a loopback
	// listener to stop DNS rebinding.
	AllowedHosts []string
	// MaxBodyBytes bounds a request body (413 beyond). Default 4 MiB.
	MaxBodyBytes int64
	// MaxBatchMessages bounds the messages of a 2025-03-26 JSON-RPC batch:
	// a larger batch is refused whole (400, -32600) before any of it runs,
	// so that a small body cannot make the server do (and answer) tens of
	// thousands of calls. Default DefaultMaxBatchMessages (100).
	MaxBatchMessages int
	// MaxResponseBytes bounds what one legacy POST produces (its responses
	// and notifications, as JSON): a response that would go past it is
	// replaced by a JSON-RPC error response (-32000) saying so, and a
	// notification past it is dropped. Default DefaultMaxResponseBytes
	// (16 MiB).
	MaxResponseBytes int
	// KeepAlive is the interval of SSE comment lines on idle streams.
	// Default 15s.
	KeepAlive time.Duration
	// MaxRequestDuration bounds a legacy request that waits on the client (for
	// example an unanswered elicitation). Default 10 minutes.
	MaxRequestDuration time.Duration
	// LeaseTTL is how long a legacy request's stream stays leased to the
	// replica running the request without a renewal (renewals come every
	// LeaseTTL/3). When a client resumes the stream of a replica that died,
	// the unanswered requests get an error response LeaseTTL to
	// 1.5×LeaseTTL after the replica's last renewal. Default 10s.
	LeaseTTL time.Duration
	// StreamDelay is how long a legacy request may run before its SSE
	// stream is opened: until then, what it writes is held in memory and
	// nothing is sent. A request over by then (most are) costs one store
	// write: its messages and the end of its stream, logged at once for a
	// client that resumes it, then sent. A longer one opens its stream,
	// taking a lease on it, and sends and logs each message from then on.
	// A request that sends a server-to-client request opens its stream at
	// once. Default 100ms; it is capped at KeepAlive.
	StreamDelay time.Duration
	// Policy, if set, is what each tool, prompt and resource needs:
	// CheckScopes asks it.
	Policy *policy.Registry
	// Logger receives request errors; nil discards.
	Logger *slog.Logger
	// Now is the clock that bounds how long a cached session record is
	// trusted; default time.Now.
	Now func() time.Time
	// Observer, if set, is told of every request, SSE stream and legacy
	// session (metrics).
	Observer Observer
}

// A Handler is the one MCP endpoint. It serves the stateless 2026-07-28
// revision through the go-sdk's stateless streamable handler and the legacy
// session-based revisions through its own session layer, whose state lives
// entirely in Stores so that any replica can serve any request.
type Handler struct {
	server *mcp.Server
	stores Stores
	opts   Options
	// modern serves the stateless revision with SSE responses, which
	// carry a request's progress and log notifications before its result;
	// modernJSON with one application/json response, for a request that
	// can have none (see answersInJSON). Two handlers, because the go-sdk
	// answers in JSON or SSE as its options say, never per request (no
	// upstream issue found; TestGoSDKStreamsEveryStatelessAnswer tells if
	// that changes).
	modern, modernJSON http.Handler
	log                *slog.Logger

	listenMu     sync.Mutex
	listenOwners map[*mcp.ServerSession]string // live subscriptions/listen streams → subject

	getMu   sync.Mutex
	getLive map[string]*liveStream // session → its GET stream on this replica
	closing bool                   // Close was called: no more GET streams

	subMu    sync.Mutex
	subReady chan struct{} // closed while relayBroadcasts is subscribed

	cache *sessionCache

	// stopRenewals makes the replica stop renewing its stream leases, as
	// if it had died (tests).
	stopRenewals atomic.Bool

	stop     context.CancelFunc
	done     chan struct{}
	tapClose func()
}

// NewHandler returns the /mcp endpoint for server. The server should be
// created with SupportedVersions. Close stops its background work.
func NewHandler(server *mcp.Server, stores Stores, opts *Options) *Handler {
	if server == nil {
		panic("mcpserver: nil server")
	}
	if stores.Sessions == nil || stores.Events == nil || stores.Leases == nil || stores.Inbox == nil || stores.Broadcaster == nil {
		panic("mcpserver: incomplete Stores")
	}
	h := &Handler{
		server:       server,
		stores:       stores,
		listenOwners: map[*mcp.ServerSession]string{},
		getLive:      map[string]*liveStream{},
		subReady:     make(chan struct{}),
		cache:        newSessionCache(),
		done:         make(chan struct{}),
	}
	if opts != nil {
		h.opts = *opts
	}
	if h.opts.Now != nil {
		h.cache.now = h.opts.Now
	}
	if h.opts.MaxBodyBytes <= 0 {
		h.opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if h.opts.MaxBatchMessages <= 0 {
		h.opts.MaxBatchMessages = DefaultMaxBatchMessages
	}
	if h.opts.MaxResponseBytes <= 0 {
		h.opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if h.opts.KeepAlive <= 0 {
		h.opts.KeepAlive = 15 * time.Second
	}
	if h.opts.MaxRequestDuration <= 0 {
		h.opts.MaxRequestDuration = 10 * time.Minute
	}
	if h.opts.LeaseTTL <= 0 {
		h.opts.LeaseTTL = 10 * time.Second
	}
	if h.opts.StreamDelay <= 0 {
		h.opts.StreamDelay = 100 * time.Millisecond
	}
	h.opts.StreamDelay = min(h.opts.StreamDelay, h.opts.KeepAlive)
	h.log = h.opts.Logger
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	modernOpts := mcp.StreamableHTTPOptions{
		Stateless: true,
		// Host and Origin are checked here, with this handler's allow-lists.
		DisableLocalhostProtection:   true,
		MaxRequestBodyBytes:          h.opts.MaxBodyBytes,
		PropagateRequestCancellation: true,
		Logger:                       h.opts.Logger,
	}
	h.modern = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &modernOpts)
	modernOpts.JSONResponse = true
	h.modernJSON = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &modernOpts)
	server.AddReceivingMiddleware(h.trackListeners, h.catchUnavailable)
	if h.opts.Observer != nil {
		// Added last, so outermost: it sees what the client gets.
		server.AddReceivingMiddleware(h.observe)
	}
	server.AddSendingMiddleware(h.filterOwnedNotifications)

	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	h.tapClose = h.startTap(ctx)
	go h.relayBroadcasts(ctx)
	return h
}

// Close stops the handler's background work and ends the GET streams
// (which would otherwise stay open); a GET from then on is answered 503.
// Other in-flight requests are not interrupted: the http.Server's Shutdown
// drains them.
func (h *Handler) Close() error {
	h.stop()
	h.getMu.Lock()
	h.closing = true
	for _, live := range h.getLive {
		live.cancel()
	}
	h.getMu.Unlock()
	<-h.done
	h.tapClose()
	return nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.hostAllowed(r.Host) {
		writeRPCError(w, http.StatusForbidden, jsonrpc.ID{}, -32000, "Forbidden: Host not allowed")
		return
	}
	origin := r.Header.Get("Origin")
	if origin != "" && !h.originAllowed(origin) {
		writeRPCError(w, http.StatusForbidden, jsonrpc.ID{}, -32000, "Forbidden: Origin not allowed")
		return
	}
	if origin != "" {
		setCORS(w.Header(), origin)
	}
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Last-Event-ID, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, Mcp-Param-*")
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPost:
		h.servePOST(w, r)
	case http.MethodGet, http.MethodDelete:
		if isModernVersion(r.Header.Get(headerProtocolVersion)) {
			w.Header().Set("Allow", "POST")
			writeRPCError(w, http.StatusMethodNotAllowed, jsonrpc.ID{}, -32000, "Method Not Allowed: "+Version20260728+" is POST only")
			return
		}
		if r.Method == http.MethodGet {
			h.legacyGET(w, r)
		} else {
			h.legacyDELETE(w, r)
		}
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeRPCError(w, http.StatusMethodNotAllowed, jsonrpc.ID{}, -32000, "Method Not Allowed")
	}
}

func setCORS(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, WWW-Authenticate, Mcp-Protocol-Version")
}

func (h *Handler) servePOST(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, h.opts.MaxBodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeRPCError(w, http.StatusRequestEntityTooLarge, jsonrpc.ID{}, jsonrpc.CodeInvalidRequest,
				fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
			return
		}
		writeRPCError(w, http.StatusBadRequest, jsonrpc.ID{}, jsonrpc.CodeParseError, "failed to read body")
		return
	}
	if isModernRequest(r.Header.Get(headerProtocolVersion), body) {
		ctx, health := withHealth(r.Context())
		r = r.WithContext(ctx)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		uw := &unavailableWriter{ResponseWriter: w, health: health}
		if answersInJSON(body) {
			h.modernJSON.ServeHTTP(uw, r)
		} else {
			ended := h.streamOpened()
			h.modern.ServeHTTP(uw, r)
			ended()
		}
		return
	}
	h.legacyPOST(w, r, body)
}

// answersInJSON reports whether a stateless POST can be answered with one
// application/json response instead of an SSE stream (the client accepts
// both). In the stateless revision the only messages a request's stream
// carries before its result are progress notifications, sent only for a
// request whose _meta has a progressToken, and log messages, sent only for
// one whose _meta sets io.modelcontextprotocol/logLevel: a single request
// with neither loses nothing in JSON. Answering it in JSON spares a
// flush per event, a write system call (the stream's events, then its
// end) that costs about a tenth of the server CPU of a tools/call
// (`make bench`). The test is on the bytes and errs towards SSE: either
// name anywhere, or a \u escape that could spell one, means SSE; so do
// batches and subscriptions/listen (which the go-sdk streams anyway).
func answersInJSON(body []byte) bool {
	body = bytes.TrimLeft(body, " \t\r\n")
	return len(body) > 0 && body[0] == '{' &&
		!bytes.Contains(body, []byte("progressToken")) &&
		!bytes.Contains(body, []byte("logLevel")) &&
		!bytes.Contains(body, []byte(`\u`)) &&
		!bytes.Contains(body, []byte("subscriptions/listen"))
}

// isLegacyVersion reports whether v names a session-based revision we serve.
func isLegacyVersion(v string) bool { return slices.Contains(LegacyVersions, v) }

// isModernVersion reports whether the MCP-Protocol-Version header asks for the
// stateless era: any value that is not a legacy revision. Unknown values are
// answered by the stateless handler with -32022 and the supported list, the
// error a dual-era client recognizes.
func isModernVersion(header string) bool {
	v := strings.TrimSpace(header)
	return v != "" && !isLegacyVersion(v) && v != "2024-11-05"
}

// isModernRequest chooses the era of a POST: a modern header or a request
// carrying the per-request _meta protocol version is stateless; anything
// else (initialize, or a request in a session) is legacy.
func isModernRequest(header string, body []byte) bool {
	if strings.TrimSpace(header) != "" {
		return isModernVersion(header)
	}
	var probe struct {
		Params struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		} `json:"params"`
	}
	if len(body) == 0 || body[0] == '[' || json.Unmarshal(body, &probe) != nil {
		return false
	}
	_, ok := probe.Params.Meta[metaProtocolVersion]
	return ok
}

func (h *Handler) hostAllowed(host string) bool {
	if len(h.opts.AllowedHosts) == 0 {
		return true
	}
	name := hostname(host)
	for _, a := range h.opts.AllowedHosts {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

func (h *Handler) originAllowed(origin string) bool {
	if slices.Contains(h.opts.AllowedOrigins, origin) {
		return true
	}
	if !h.opts.AllowLoopbackOrigins {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" {
		return false
	}
	return IsLoopbackHost(u.Hostname())
}

// hostname strips the port from a Host header value.
func hostname(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// IsLoopbackHost reports whether name is localhost or a loopback IP literal.
func IsLoopbackHost(name string) bool {
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// subjectOf returns the authenticated subject, or Anonymous.
func subjectOf(ctx context.Context) string {
	if ti := auth.TokenInfoFromContext(ctx); ti != nil && ti.UserID != "" {
		return ti.UserID
	}
	return Anonymous
}

// writeRPCError writes a JSON-RPC error response with the given status.
func writeRPCError(w http.ResponseWriter, status int, id jsonrpc.ID, code int64, msg string) {
	data, _ := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: code, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(data)
}
