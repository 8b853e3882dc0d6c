package mcpserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/memstore"
)

var update = flag.Bool("update", false, "rewrite golden files")

// timeout bounds every request of these tests, streams included.
const timeout = 5 * time.Second

const (
	codeSessionNotFound            = -32001
	codeHeaderMismatch             = -32020
	codeUnsupportedProtocolVersion = -32022
	codeParseError                 = -32700
	codeInvalidRequest             = -32600
	codeMethodNotFound             = -32601
)

type echoIn struct {
	Text string `json:"text"`
}

type gateIn struct {
	Key string `json:"key"`
}

// gates lets a test observe and steer the "block" and "pause" tools: key →
// chan struct{}, closed by the tool when it is cancelled ("block") or by the
// test to let the tool finish ("pause").
var gates sync.Map

// tallies counts the calls of the tally tool, by key (an *atomic.Int64).
var tallies sync.Map

func newGate(t *testing.T) (key string, ch chan struct{}) {
	key, ch = t.Name(), make(chan struct{})
	gates.Store(key, ch)
	t.Cleanup(func() { gates.Delete(key) })
	return key, ch
}

func gate(key string) chan struct{} {
	if ch, ok := gates.Load(key); ok {
		return ch.(chan struct{})
	}
	return nil
}

// newServer returns the MCP server behind every test handler: an echo tool,
// a tool that reports progress, a tool that elicits, and a subscribable
// resource.
func newServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "test-server", Version: "1.0.0"}, &mcp.ServerOptions{
		SupportedProtocolVersions: mcpserver.SupportedVersions,
		SubscribeHandler:          func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler:        func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echo the text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "steps", Description: "Report progress twice."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			if token := req.Params.GetProgressToken(); token != nil {
				for i := range 2 {
					err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Progress: float64(i + 1), Total: 2})
					if err != nil {
						return nil, nil, err
					}
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "ask", Description: "Ask the user for a name."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
				Message: "Your name?",
				RequestedSchema: map[string]any{
					"type":       "object",
					"properties": map[string]any{"name": map[string]any{"type": "string"}},
					"required":   []string{"name"},
				},
			})
			if err != nil {
				return nil, nil, err
			}
			text := fmt.Sprintf("%s: %v", res.Action, res.Content["name"])
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "block", Description: "Wait to be cancelled."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in gateIn) (*mcp.CallToolResult, any, error) {
			if ch := gate(in.Key + "/started"); ch != nil {
				close(ch)
			}
			<-ctx.Done()
			if ch := gate(in.Key); ch != nil {
				close(ch)
			}
			return nil, nil, ctx.Err()
		})
	mcp.AddTool(s, &mcp.Tool{Name: "wait", Description: "Finish when the gate opens."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in gateIn) (*mcp.CallToolResult, any, error) {
			select {
			case <-gate(in.Key):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "waited"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "tally", Description: "Count the calls of a key."},
		func(_ context.Context, _ *mcp.CallToolRequest, in gateIn) (*mcp.CallToolResult, any, error) {
			n, _ := tallies.LoadOrStore(in.Key, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "counted"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "pause", Description: "Close the SSE stream, then finish when the gate opens."},
		func(ctx context.Context, req *mcp.CallToolRequest, in gateIn) (*mcp.CallToolResult, any, error) {
			req.Extra.CloseSSEStream(mcp.CloseSSEStreamArgs{RetryAfter: 50 * time.Millisecond})
			select {
			case <-gate(in.Key):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "resumed"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "unreachable", Description: "Fail as a store that cannot be reached, after reporting progress if asked."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			if token := req.Params.GetProgressToken(); token != nil {
				req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Progress: 1, Total: 2})
			}
			return nil, nil, fmt.Errorf("list notes: %w", errUnreachable)
		})
	s.AddResource(&mcp.Resource{URI: "notes://down", Name: "down", MIMEType: "text/plain"},
		func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return nil, fmt.Errorf("get note: %w", errUnreachable)
		})
	s.AddResource(&mcp.Resource{URI: "notes://alice/1", Name: "note", MIMEType: "text/plain"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "hello"}}}, nil
		})
	return s
}

// An env is one Handler served over HTTP, with its stores.
type env struct {
	url    string
	stores mcpserver.Stores
}

// newEnv serves a Handler on fresh memstore stores.
func newEnv(t *testing.T, opts *mcpserver.Options) *env {
	t.Helper()
	stores := memstore.New(nil)
	return &env{url: serve(t, stores, opts), stores: stores}
}

// serve starts a Handler (one replica) on stores and returns its URL. A
// request with "Authorization: Bearer <name>" is authenticated as subject
// <name> by the go-sdk's bearer middleware; one without is anonymous.
func serve(t *testing.T, stores mcpserver.Stores, opts *mcpserver.Options) string {
	t.Helper()
	h := mcpserver.NewHandler(newServer(), stores, opts)
	verify := func(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		return &auth.TokenInfo{UserID: token, Expiration: time.Now().Add(time.Hour)}, nil
	}
	bearer := auth.RequireBearerToken(verify, nil)(h)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			bearer.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { h.Close() }) // runs first: ends live GET streams
	return srv.URL
}

// A request describes one HTTP request to the endpoint. POSTs get JSON and
// SSE Accept and JSON Content-Type unless edit changes them.
type request struct {
	method  string // default POST
	token   string // bearer token (and subject); "" for anonymous
	version string // MCP-Protocol-Version
	session string // Mcp-Session-Id
	body    string
	edit    func(*http.Request)
}

func (e *env) do(t *testing.T, r request) *http.Response {
	t.Helper()
	return do(t, e.url, r)
}

func do(t *testing.T, url string, r request) *http.Response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	switch r.method {
	case http.MethodPost:
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	case http.MethodGet:
		req.Header.Set("Accept", "text/event-stream")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.version != "" {
		req.Header.Set("MCP-Protocol-Version", r.version)
	}
	if r.session != "" {
		req.Header.Set("Mcp-Session-Id", r.session)
	}
	if r.edit != nil {
		r.edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", r.method, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

// A message is any JSON-RPC message, decoded loosely.
type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data,omitempty"`
	} `json:"error,omitempty"`
}

func decodeMessage(t *testing.T, data []byte) message {
	t.Helper()
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decode JSON-RPC message %q: %v", data, err)
	}
	return m
}

// errorCode returns the JSON-RPC error code of a JSON response body, or 0.
func errorCode(t *testing.T, body []byte) int64 {
	t.Helper()
	if m := decodeMessage(t, body); m.Error != nil {
		return m.Error.Code
	}
	return 0
}

// An event is one server-sent event.
type event struct {
	ID    string
	Name  string // the event field
	Data  string
	Retry string
}

type sseReader struct{ br *bufio.Reader }

func newSSEReader(r io.Reader) *sseReader { return &sseReader{br: bufio.NewReader(r)} }

// next returns the next event, skipping comments (keep-alives).
func (r *sseReader) next() (event, error) {
	var e event
	var data []string
	seen := false
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			if err == io.EOF && seen {
				err = io.ErrUnexpectedEOF
			}
			return event{}, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if seen {
				e.Data = strings.Join(data, "\n")
				return e, nil
			}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		seen = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			e.ID = value
		case "event":
			e.Name = value
		case "data":
			data = append(data, value)
		case "retry":
			e.Retry = value
		}
	}
}

// readEvents reads a stream to its end.
func readEvents(t *testing.T, resp *http.Response) []event {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q, want text/event-stream (status %d)", ct, resp.StatusCode)
	}
	r := newSSEReader(resp.Body)
	var out []event
	for {
		e, err := r.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read SSE: %v", err)
		}
		out = append(out, e)
	}
}

// messages returns the JSON-RPC messages of a stream's events.
func messages(t *testing.T, events []event) []message {
	t.Helper()
	var out []message
	for _, e := range events {
		if e.Data != "" {
			out = append(out, decodeMessage(t, []byte(e.Data)))
		}
	}
	return out
}

// toolText returns the text of a tools/call result.
func toolText(t *testing.T, m message) string {
	t.Helper()
	if m.Error != nil {
		t.Fatalf("tools/call failed: %d %s", m.Error.Code, m.Error.Message)
	}
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(m.Result, &res); err != nil || len(res.Content) != 1 {
		t.Fatalf("tools/call result %s: %v", m.Result, err)
	}
	if res.IsError {
		t.Fatalf("tools/call returned an error: %s", res.Content[0].Text)
	}
	return res.Content[0].Text
}

func initializeBody(version, capabilities string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":%q,"capabilities":%s,"clientInfo":{"name":"test-client","version":"1.0.0"}}}`, version, capabilities)
}

// initialize opens a legacy session for token's subject and returns its ID.
func (e *env) initialize(t *testing.T, token, version, capabilities string) string {
	t.Helper()
	return initialize(t, e.url, token, version, capabilities)
}

func initialize(t *testing.T, url, token, version, capabilities string) string {
	t.Helper()
	resp := do(t, url, request{token: token, body: initializeBody(version, capabilities)})
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("initialize: status %d: %s", resp.StatusCode, body)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatalf("initialize: no Mcp-Session-Id")
	}
	resp = do(t, url, request{token: token, version: version, session: sid, body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications/initialized: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	return sid
}

func callBody(id int, method, params string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params)
}

// modernBody is a 2026-07-28 request whose _meta names version.
func modernBody(method, version, params string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":%q,"io.modelcontextprotocol/clientCapabilities":{}}%s}}`, method, version, params)
}

// lastMessage returns the last JSON-RPC message of a JSON or SSE response.
func lastMessage(t *testing.T, resp *http.Response) message {
	t.Helper()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		msgs := messages(t, readEvents(t, resp))
		if len(msgs) == 0 {
			t.Fatalf("empty stream")
		}
		return msgs[len(msgs)-1]
	}
	return decodeMessage(t, readBody(t, resp))
}

func TestOrigin(t *testing.T) {
	e := newEnv(t, &mcpserver.Options{AllowedOrigins: []string{"https://app.example.com"}, AllowLoopbackOrigins: true})
	strict := newEnv(t, &mcpserver.Options{AllowedOrigins: []string{"https://app.example.com"}})
	for _, tt := range []struct {
		name   string
		env    *env
		origin string
		want   int
	}{
		{"no Origin", e, "", http.StatusOK},
		{"allowed", e, "https://app.example.com", http.StatusOK},
		{"loopback name", e, "http://localhost:5173", http.StatusOK},
		{"loopback IPv4", e, "http://127.0.0.1:8080", http.StatusOK},
		{"loopback IPv6", e, "https://[::1]:8443", http.StatusOK},
		{"foreign", e, "https://evil.example", http.StatusForbidden},
		{"allowed with another port", e, "https://app.example.com:8443", http.StatusForbidden},
		{"allowed with another scheme", e, "http://app.example.com", http.StatusForbidden},
		{"loopback-looking name", e, "http://localhost.evil.example", http.StatusForbidden},
		{"loopback with path", e, "http://localhost:5173/x", http.StatusForbidden},
		{"loopback other scheme", e, "file://localhost", http.StatusForbidden},
		{"null", e, "null", http.StatusForbidden},
		{"loopback not allowed", strict, "http://localhost:5173", http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.env.do(t, request{body: initializeBody(mcpserver.Version20251125, "{}"), edit: func(r *http.Request) {
				if tt.origin != "" {
					r.Header.Set("Origin", tt.origin)
				}
			}})
			body := readBody(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			var want, got map[string]string
			if tt.origin != "" && tt.want == http.StatusOK {
				want = map[string]string{
					"Access-Control-Allow-Origin":   tt.origin,
					"Access-Control-Expose-Headers": "Mcp-Session-Id, WWW-Authenticate, Mcp-Protocol-Version",
					"Vary":                          "Origin",
				}
			}
			for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Vary"} {
				if v := resp.Header.Get(k); v != "" {
					if got == nil {
						got = map[string]string{}
					}
					got[k] = v
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("CORS headers (-want +got):\n%s", diff)
			}
			if tt.want == http.StatusForbidden && errorCode(t, body) != -32000 {
				t.Errorf("403 body = %s, want a JSON-RPC error", body)
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	e := newEnv(t, &mcpserver.Options{AllowedOrigins: []string{"https://app.example.com"}})
	resp := e.do(t, request{method: http.MethodOptions, edit: func(r *http.Request) {
		r.Header.Set("Origin", "https://app.example.com")
		r.Header.Set("Access-Control-Request-Method", "POST")
	}})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", resp.StatusCode)
	}
	got := map[string]string{}
	for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods"} {
		got[k] = resp.Header.Get(k)
	}
	want := map[string]string{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Methods": "GET, POST, DELETE"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("preflight headers (-want +got):\n%s", diff)
	}
	for _, h := range []string{"Authorization", "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-ID"} {
		if !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), h) {
			t.Errorf("Access-Control-Allow-Headers = %q, missing %s", resp.Header.Get("Access-Control-Allow-Headers"), h)
		}
	}
}

func TestHost(t *testing.T) {
	e := newEnv(t, &mcpserver.Options{AllowedHosts: []string{"localhost", "::1"}})
	open := newEnv(t, nil)
	for _, tt := range []struct {
		name string
		env  *env
		host string
		want int
	}{
		{"allowed", e, "localhost", http.StatusOK},
		{"allowed with port", e, "localhost:8080", http.StatusOK},
		{"allowed, other case", e, "LocalHost:8080", http.StatusOK},
		{"allowed IPv6", e, "[::1]:8080", http.StatusOK},
		{"rebound name", e, "evil.example", http.StatusForbidden},
		{"rebound name with port", e, "evil.example:8080", http.StatusForbidden},
		{"loopback IP not listed", e, "127.0.0.1:8080", http.StatusForbidden},
		{"no allow-list", open, "evil.example", http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.env.do(t, request{body: initializeBody(mcpserver.Version20251125, "{}"), edit: func(r *http.Request) { r.Host = tt.host }})
			body := readBody(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
		})
	}
}

// TestHTTPErrors covers the transport-level rejections of both eras.
func TestHTTPErrors(t *testing.T) {
	e := newEnv(t, &mcpserver.Options{MaxBodyBytes: 1024})
	sid := e.initialize(t, "", mcpserver.Version20250618, "{}")
	list := callBody(2, "tools/list", "{}")
	setHeader := func(k, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(k, v) } }
	delHeader := func(k string) func(*http.Request) { return func(r *http.Request) { r.Header.Del(k) } }
	big := `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"pad":"` + strings.Repeat("x", 2048) + `"}}`

	for _, tt := range []struct {
		name   string
		req    request
		status int
		code   int64             // JSON-RPC error code of the body; 0 to skip
		header map[string]string // response headers to check
	}{
		{"PUT", request{method: http.MethodPut, body: list}, http.StatusMethodNotAllowed, -32000, map[string]string{"Allow": "GET, POST, DELETE"}},
		{"PATCH", request{method: http.MethodPatch, body: list}, http.StatusMethodNotAllowed, -32000, map[string]string{"Allow": "GET, POST, DELETE"}},
		{"modern GET", request{method: http.MethodGet, version: mcpserver.Version20260728}, http.StatusMethodNotAllowed, -32000, map[string]string{"Allow": "POST"}},
		{"modern DELETE", request{method: http.MethodDelete, version: mcpserver.Version20260728, session: sid}, http.StatusMethodNotAllowed, -32000, map[string]string{"Allow": "POST"}},
		{"legacy body too large", request{version: mcpserver.Version20250618, session: sid, body: big}, http.StatusRequestEntityTooLarge, codeInvalidRequest, nil},
		{"modern body too large", request{version: mcpserver.Version20260728, body: big}, http.StatusRequestEntityTooLarge, codeInvalidRequest, nil},
		{"wrong Content-Type", request{version: mcpserver.Version20250618, session: sid, body: list, edit: setHeader("Content-Type", "text/plain")}, http.StatusUnsupportedMediaType, -32000, nil},
		{"no Content-Type", request{version: mcpserver.Version20250618, session: sid, body: list, edit: delHeader("Content-Type")}, http.StatusUnsupportedMediaType, -32000, nil},
		{"no Accept", request{version: mcpserver.Version20250618, session: sid, body: list, edit: delHeader("Accept")}, http.StatusNotAcceptable, -32000, nil},
		{"Accept JSON only", request{version: mcpserver.Version20250618, session: sid, body: list, edit: setHeader("Accept", "application/json")}, http.StatusNotAcceptable, -32000, nil},
		{"Accept SSE only", request{version: mcpserver.Version20250618, session: sid, body: list, edit: setHeader("Accept", "text/event-stream")}, http.StatusNotAcceptable, -32000, nil},
		{"GET Accept JSON only", request{method: http.MethodGet, version: mcpserver.Version20250618, session: sid, edit: setHeader("Accept", "application/json")}, http.StatusNotAcceptable, -32000, nil},
		{"malformed JSON", request{version: mcpserver.Version20250618, session: sid, body: `{"jsonrpc":"2.0",`}, http.StatusBadRequest, codeParseError, nil},
		{"not JSON-RPC", request{version: mcpserver.Version20250618, session: sid, body: `{"id":1}`}, http.StatusBadRequest, codeParseError, nil},
		{"empty body", request{version: mcpserver.Version20250618, session: sid}, http.StatusBadRequest, codeParseError, nil},
		{"batch for 2025-06-18", request{version: mcpserver.Version20250618, session: sid, body: "[" + list + "]"}, http.StatusBadRequest, codeInvalidRequest, nil},
		{"batch for 2025-11-25", request{version: mcpserver.Version20251125, session: sid, body: "[" + list + "]"}, http.StatusBadRequest, codeInvalidRequest, nil},
		{"empty batch", request{session: sid, body: "[]"}, http.StatusBadRequest, codeParseError, nil},
		{"initialize in a batch", request{body: "[" + initializeBody(mcpserver.Version20250326, "{}") + "," + list + "]"}, http.StatusBadRequest, codeInvalidRequest, nil},
		{"initialize in a session", request{version: mcpserver.Version20250618, session: sid, body: initializeBody(mcpserver.Version20250618, "{}")}, http.StatusBadRequest, codeInvalidRequest, nil},
		{"no session", request{version: mcpserver.Version20250618, body: list}, http.StatusBadRequest, -32000, nil},
		{"GET without session", request{method: http.MethodGet, version: mcpserver.Version20250618}, http.StatusBadRequest, -32000, nil},
		{"DELETE without session", request{method: http.MethodDelete, version: mcpserver.Version20250618}, http.StatusBadRequest, -32000, nil},
		{"unknown session", request{version: mcpserver.Version20250618, session: "AAAAAAAAAAAAAAAAAAAAAAAAAA", body: list}, http.StatusNotFound, codeSessionNotFound, nil},
		{"malformed session", request{version: mcpserver.Version20250618, session: "not a session", body: list}, http.StatusNotFound, codeSessionNotFound, nil},
		{"overlong session", request{version: mcpserver.Version20250618, session: strings.Repeat("A", 129), body: list}, http.StatusNotFound, codeSessionNotFound, nil},
		{"GET unknown session", request{method: http.MethodGet, version: mcpserver.Version20250618, session: "AAAAAAAAAAAAAAAAAAAAAAAAAA"}, http.StatusNotFound, codeSessionNotFound, nil},
		{"DELETE unknown session", request{method: http.MethodDelete, version: mcpserver.Version20250618, session: "AAAAAAAAAAAAAAAAAAAAAAAAAA"}, http.StatusNotFound, codeSessionNotFound, nil},
		{"malformed Last-Event-ID", request{method: http.MethodGet, version: mcpserver.Version20250618, session: sid, edit: setHeader("Last-Event-ID", "no-such-format-x")}, http.StatusBadRequest, -32000, nil},
		{"Content-Type with charset", request{version: mcpserver.Version20250618, session: sid, body: list, edit: setHeader("Content-Type", "application/json; charset=utf-8")}, http.StatusOK, 0, nil},
		{"Accept wildcard", request{version: mcpserver.Version20250618, session: sid, body: list, edit: setHeader("Accept", "*/*")}, http.StatusOK, 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(t, tt.req)
			body := readBody(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.code != 0 {
				if got := errorCode(t, body); got != tt.code {
					t.Errorf("JSON-RPC error code = %d, want %d: %s", got, tt.code, body)
				}
			}
			for k, want := range tt.header {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestBatch2025_03_26(t *testing.T) {
	e := newEnv(t, nil)
	sid := e.initialize(t, "", mcpserver.Version20250326, "{}")
	// One call per batch: TestBatchResponsesNotLost covers several.
	body := "[" + callBody(2, "tools/call", `{"name":"echo","arguments":{"text":"batched"}}`) + `,{"jsonrpc":"2.0","method":"notifications/initialized"}]`
	resp := e.do(t, request{session: sid, body: body}) // no version header: 2025-03-26
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	msgs := messages(t, readEvents(t, resp))
	if len(msgs) != 1 || string(msgs[0].ID) != "2" {
		t.Fatalf("batch responses = %+v, want the response to 2", msgs)
	}
	if got := toolText(t, msgs[0]); got != "batched" {
		t.Errorf("tools/call = %q, want batched", got)
	}
}

// slowUpdates delays SessionStore.Update, once armed, until the other
// response of the batch is in the request stream's log (or the Update's
// context ends), to widen the window between one response's removal from
// the pending set and the other's append to the stream.
type slowUpdates struct {
	mcpserver.SessionStore
	armed   atomic.Bool
	started chan struct{} // closed when an armed Update begins
	logged  chan struct{} // closed by slowLog
	once    sync.Once
}

func (s *slowUpdates) Update(ctx context.Context, id string, fn func(*mcpserver.Session)) error {
	if s.armed.Load() {
		s.once.Do(func() { close(s.started) })
		select {
		case <-s.logged:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.SessionStore.Update(ctx, id, fn)
}

// slowLog closes s.logged once, armed, it has logged the response whose
// JSON-RPC ID is id.
type slowLog struct {
	mcpserver.EventLog
	s    *slowUpdates
	id   string // the response's "id" member, as logged
	once sync.Once
}

func (l *slowLog) WriteStream(ctx context.Context, sid, stream string, w *mcpserver.StreamWrite) (int64, error) {
	last, err := l.EventLog.WriteStream(ctx, sid, stream, w)
	if err == nil && l.s.armed.Load() && slices.ContainsFunc(w.Events, func(e []byte) bool { return bytes.Contains(e, []byte(l.id)) }) {
		l.once.Do(func() { close(l.s.logged) })
	}
	return last, err
}

// TestBatchResponsesNotLost checks that every call of a batch is answered,
// even when the responses are written concurrently.
func TestBatchResponsesNotLost(t *testing.T) {
	stores := memstore.New(nil)
	slow := &slowUpdates{SessionStore: stores.Sessions, started: make(chan struct{}), logged: make(chan struct{})}
	stores.Sessions = slow
	// subscribe's Update waits for the wait call's response (ID 3).
	stores.Events = &slowLog{EventLog: stores.Events, s: slow, id: `"id":3`}
	e := &env{url: serve(t, stores, nil), stores: stores}
	sid := e.initialize(t, "", mcpserver.Version20250326, "{}")
	key := t.Name()
	gates.Store(key, slow.started) // "wait" answers once subscribe's Update has begun
	t.Cleanup(func() { gates.Delete(key) })
	slow.armed.Store(true)

	body := "[" + callBody(2, "resources/subscribe", `{"uri":"notes://alice/1"}`) + "," +
		callBody(3, "tools/call", `{"name":"wait","arguments":{"key":"`+key+`"}}`) + "]"
	resp := e.do(t, request{session: sid, body: body})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	var ids []string
	for _, m := range messages(t, readEvents(t, resp)) {
		if m.Error != nil {
			t.Errorf("response %s: error %d %s", m.ID, m.Error.Code, m.Error.Message)
		}
		ids = append(ids, string(m.ID))
	}
	slices.Sort(ids)
	if diff := cmp.Diff([]string{"2", "3"}, ids); diff != "" {
		t.Errorf("batch responses by ID (-want +got):\n%s", diff)
	}
	select {
	case <-slow.logged:
	default:
		t.Error("the wait call's response was not logged while subscribe's session update waited: the window was not exercised")
	}
}

func TestNotificationsOnly(t *testing.T) {
	e := newEnv(t, nil)
	sid := e.initialize(t, "", mcpserver.Version20251125, "{}")
	resp := e.do(t, request{version: mcpserver.Version20251125, session: sid, body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}`})
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status = %d, want 202: %s", resp.StatusCode, readBody(t, resp))
	}
	// A response nobody waits for is accepted and dropped.
	resp = e.do(t, request{version: mcpserver.Version20251125, session: sid, body: `{"jsonrpc":"2.0","id":"nobody.1","result":{}}`})
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status = %d, want 202: %s", resp.StatusCode, readBody(t, resp))
	}
}

func TestSessionID(t *testing.T) {
	e := newEnv(t, nil)
	seen := map[string]bool{}
	for range 3 {
		resp := e.do(t, request{body: initializeBody(mcpserver.Version20251125, "{}")})
		readBody(t, resp)
		sid := resp.Header.Get("Mcp-Session-Id")
		if len(sid) < 16 || len(sid) > 128 {
			t.Errorf("Mcp-Session-Id %q: length %d, want 16..128", sid, len(sid))
		}
		for i := range len(sid) {
			if sid[i] < 0x21 || sid[i] > 0x7e {
				t.Errorf("Mcp-Session-Id %q: byte %#x is not visible ASCII", sid, sid[i])
			}
		}
		if seen[sid] {
			t.Errorf("Mcp-Session-Id %q issued twice", sid)
		}
		seen[sid] = true
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t, nil)
	sid := e.initialize(t, "", mcpserver.Version20251125, "{}")
	other := e.initialize(t, "", mcpserver.Version20251125, "{}")
	resp := e.do(t, request{method: http.MethodDelete, version: mcpserver.Version20251125, session: sid})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE status = %d, want 204: %s", resp.StatusCode, readBody(t, resp))
	}
	for _, tt := range []struct {
		name    string
		req     request
		status  int
		errCode int64
	}{
		{"POST", request{version: mcpserver.Version20251125, session: sid, body: callBody(2, "tools/list", "{}")}, http.StatusNotFound, codeSessionNotFound},
		{"GET", request{method: http.MethodGet, version: mcpserver.Version20251125, session: sid}, http.StatusNotFound, codeSessionNotFound},
		{"DELETE again", request{method: http.MethodDelete, version: mcpserver.Version20251125, session: sid}, http.StatusNotFound, codeSessionNotFound},
		{"other session lives", request{version: mcpserver.Version20251125, session: other, body: callBody(2, "tools/list", "{}")}, http.StatusOK, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(t, tt.req)
			body := readBody(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.errCode != 0 {
				if got := errorCode(t, body); got != tt.errCode {
					t.Errorf("JSON-RPC error code = %d, want %d", got, tt.errCode)
				}
			}
		})
	}
}

// TestDeleteDuringRequest checks that a request whose session is deleted
// while it runs gets 404 rather than its response: its stream is written
// (and the session checked) only once it is over, or once it has run for
// StreamDelay.
func TestDeleteDuringRequest(t *testing.T) {
	e := newEnv(t, &mcpserver.Options{StreamDelay: 5 * time.Second})
	const version = mcpserver.Version20251125
	sid := e.initialize(t, "", version, "{}")
	key, release := newGate(t)
	type result struct {
		status int
		body   []byte
	}
	done := make(chan result, 1)
	go func() {
		resp := e.do(t, request{version: version, session: sid,
			body: callBody(2, "tools/call", `{"name":"wait","arguments":{"key":"`+key+`"}}`)})
		body, _ := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, body}
	}()
	time.Sleep(100 * time.Millisecond) // the call is running
	if resp := e.do(t, request{method: http.MethodDelete, version: version, session: sid}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	close(release)
	r := <-done
	if r.status != http.StatusNotFound || errorCode(t, r.body) != codeSessionNotFound {
		t.Errorf("the call of a deleted session = %d %s, want 404 Session not found", r.status, r.body)
	}
}

func TestDeleteEndsGETStream(t *testing.T) {
	e := newEnv(t, nil)
	sid := e.initialize(t, "", mcpserver.Version20251125, "{}")
	get := e.do(t, request{method: http.MethodGet, version: mcpserver.Version20251125, session: sid})
	if get.StatusCode != http.StatusOK {
		t.Fatalf("GET status = %d", get.StatusCode)
	}
	resp := e.do(t, request{method: http.MethodDelete, version: mcpserver.Version20251125, session: sid})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE status = %d", resp.StatusCode)
	}
	// readEvents returns at the end of the stream; do's timeout bounds it.
	for _, ev := range readEvents(t, get) {
		if ev.Data != "" {
			t.Errorf("GET stream of a deleted session sent %q", ev.Data)
		}
	}
}

// TestSessionBoundToSubject checks that a session is usable only by the
// subject that created it, and that it looks missing to everybody else.
func TestSessionBoundToSubject(t *testing.T) {
	e := newEnv(t, nil)
	sid := e.initialize(t, "alice", mcpserver.Version20251125, "{}")
	list := callBody(2, "tools/list", "{}")
	for _, tt := range []struct {
		name   string
		req    request
		status int
	}{
		{"owner POST", request{token: "alice", session: sid, body: list}, http.StatusOK},
		{"other POST", request{token: "bob", session: sid, body: list}, http.StatusNotFound},
		{"anonymous POST", request{session: sid, body: list}, http.StatusNotFound},
		{"other GET", request{method: http.MethodGet, token: "bob", session: sid}, http.StatusNotFound},
		{"other DELETE", request{method: http.MethodDelete, token: "bob", session: sid}, http.StatusNotFound},
		{"other response", request{token: "bob", session: sid, body: `{"jsonrpc":"2.0","id":"x.1","result":{}}`}, http.StatusNotFound},
		{"owner POST after the others", request{token: "alice", session: sid, body: list}, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.version = mcpserver.Version20251125
			resp := e.do(t, tt.req)
			body := readBody(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusNotFound {
				if got := errorCode(t, body); got != codeSessionNotFound {
					t.Errorf("JSON-RPC error code = %d, want %d", got, codeSessionNotFound)
				}
			}
		})
	}
	// Same for an anonymous session and an authenticated caller.
	anon := e.initialize(t, "", mcpserver.Version20251125, "{}")
	resp := e.do(t, request{token: "alice", version: mcpserver.Version20251125, session: anon, body: list})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("alice using an anonymous session: status = %d, want 404", resp.StatusCode)
	}
}

func TestInitializeGolden(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.do(t, request{body: initializeBody(mcpserver.Version20251125, `{"elicitation":{}}`)})
	got := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, got)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	path := filepath.Join("testdata", "initialize.golden.json")
	if *update {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, got, "", "  "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response: %v", err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("initialize response differs from %s (-want +got):\n%s", path, diff)
	}
}

// TestPriming checks the SEP-1699 priming event that opens a request stream:
// an event ID with empty data, sent from 2025-11-25 on.
func TestPriming(t *testing.T) {
	for _, tt := range []struct {
		version string
		priming bool
	}{
		{mcpserver.Version20251125, true},
		{mcpserver.Version20250618, false},
		{mcpserver.Version20250326, false},
	} {
		t.Run(tt.version, func(t *testing.T) {
			e := newEnv(t, nil)
			sid := e.initialize(t, "", tt.version, "{}")
			resp := e.do(t, request{version: tt.version, session: sid, body: callBody(2, "tools/call", `{"name":"echo","arguments":{"text":"hi"}}`)})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
			}
			events := readEvents(t, resp)
			if len(events) == 0 {
				t.Fatalf("empty stream")
			}
			first := events[0]
			gotPriming := first.Data == "" && first.ID != ""
			if gotPriming != tt.priming {
				t.Errorf("first event = %+v; priming = %v, want %v", first, gotPriming, tt.priming)
			}
			if tt.priming && !strings.HasSuffix(first.ID, "-0") {
				t.Errorf("priming event ID = %q, want <stream>-0", first.ID)
			}
			last := events[len(events)-1]
			if last.Name != "message" || last.ID == "" {
				t.Errorf("last event = %+v, want a message with an ID", last)
			}
			if got := toolText(t, decodeMessage(t, []byte(last.Data))); got != "hi" {
				t.Errorf("tools/call result = %q, want hi", got)
			}
		})
	}
}

// TestResume checks that a GET with the Last-Event-ID of a request stream
// replays the events after it (SEP-1699), on the same or another replica.
func TestResume(t *testing.T) {
	stores := memstore.New(nil)
	urls := map[string]string{"same replica": serve(t, stores, nil), "other replica": serve(t, stores, nil)}
	e := &env{url: urls["same replica"], stores: stores}
	const version = mcpserver.Version20251125
	sid := e.initialize(t, "alice", version, "{}")
	resp := e.do(t, request{token: "alice", version: version, session: sid,
		body: callBody(2, "tools/call", `{"name":"steps","arguments":{},"_meta":{"progressToken":"p"}}`)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	events := readEvents(t, resp)
	var kinds []string
	for _, m := range messages(t, events) {
		kinds = append(kinds, m.Method+string(m.ID))
	}
	if diff := cmp.Diff([]string{"notifications/progress", "notifications/progress", "2"}, kinds); diff != "" {
		t.Fatalf("request stream (-want +got):\n%s", diff)
	}
	if len(events) != 4 {
		t.Fatalf("request stream has %d events, want priming + 3", len(events))
	}
	for _, tt := range []struct {
		name    string
		replica string
		after   int // index of the Last-Event-ID event
	}{
		{"after priming", "same replica", 0},
		{"after first progress", "same replica", 1},
		{"after last", "same replica", 3},
		{"other replica", "other replica", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, urls[tt.replica], request{method: http.MethodGet, token: "alice", version: version, session: sid,
				edit: func(r *http.Request) { r.Header.Set("Last-Event-ID", events[tt.after].ID) }})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
			}
			got := readEvents(t, resp)
			want := events[tt.after+1:]
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []event) bool {
				return cmp.Equal(a, b) || (len(a) == 0 && len(b) == 0)
			})); diff != "" {
				t.Errorf("replayed events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestModern covers the 2026-07-28 requests served by the go-sdk's stateless
// handler, and the errors a dual-era client relies on.
func TestModern(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name    string
		version string // header
		mcpName string // Mcp-Name header
		body    string
		status  int
		code    int64
	}{
		{"tools/call", mcpserver.Version20260728, "echo", modernBody("tools/call", mcpserver.Version20260728, `,"name":"echo","arguments":{"text":"hi"}`), http.StatusOK, 0},
		{"header and _meta disagree", mcpserver.Version20260728, "", modernBody("tools/list", mcpserver.Version20251125, ""), http.StatusBadRequest, codeHeaderMismatch},
		{"header and _meta disagree, newer _meta", mcpserver.Version20260728, "", modernBody("tools/list", "2099-01-01", ""), http.StatusBadRequest, codeHeaderMismatch},
		{"_meta without header", "", "", modernBody("tools/list", mcpserver.Version20260728, ""), http.StatusBadRequest, codeHeaderMismatch},
		{"unsupported version", "2099-01-01", "", modernBody("tools/list", "2099-01-01", ""), http.StatusBadRequest, codeUnsupportedProtocolVersion},
		{"unknown method", mcpserver.Version20260728, "", modernBody("nope/nope", mcpserver.Version20260728, ""), http.StatusNotFound, codeMethodNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var method string
			var probe struct{ Method string }
			if err := json.Unmarshal([]byte(tt.body), &probe); err == nil {
				method = probe.Method
			}
			resp := e.do(t, request{version: tt.version, body: tt.body, edit: func(r *http.Request) {
				r.Header.Set("Mcp-Method", method)
				if tt.mcpName != "" {
					r.Header.Set("Mcp-Name", tt.mcpName)
				}
			}})
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, readBody(t, resp))
			}
			if resp.Header.Get("Mcp-Session-Id") != "" {
				t.Errorf("a 2026-07-28 response carries Mcp-Session-Id %q", resp.Header.Get("Mcp-Session-Id"))
			}
			m := lastMessage(t, resp)
			if tt.code == 0 {
				if got := toolText(t, m); got != "hi" {
					t.Errorf("tools/call = %q, want hi", got)
				}
				return
			}
			if m.Error == nil || m.Error.Code != tt.code {
				t.Fatalf("response = %+v, want JSON-RPC error %d", m, tt.code)
			}
			if tt.code == codeUnsupportedProtocolVersion {
				var data struct {
					Supported []string `json:"supported"`
				}
				if err := json.Unmarshal(m.Error.Data, &data); err != nil {
					t.Fatalf("error data %s: %v", m.Error.Data, err)
				}
				if diff := cmp.Diff(mcpserver.SupportedVersions, data.Supported); diff != "" {
					t.Errorf("supported versions (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestModernResponseType: a stateless request that can get no message
// before its result (no progressToken, no log level) is answered in JSON;
// one that can is answered with an SSE stream that carries them.
func TestModernResponseType(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		name  string
		meta  string // more _meta members
		want  string // Content-Type
		kinds []string
	}{
		{"no progress token", "", "application/json", []string{"2"}},
		{"progress token", `,"progressToken":"p"`, "text/event-stream", []string{"notifications/progress", "notifications/progress", "2"}},
		{"escaped progress token", `,"progress\u0054oken":"p"`, "text/event-stream", []string{"notifications/progress", "notifications/progress", "2"}},
		{"log level", `,"io.modelcontextprotocol/logLevel":"debug"`, "text/event-stream", []string{"2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"steps","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"` +
				mcpserver.Version20260728 + `","io.modelcontextprotocol/clientCapabilities":{}` + tt.meta + `}}}`
			resp := e.do(t, request{version: mcpserver.Version20260728, body: body, edit: func(r *http.Request) {
				r.Header.Set("Mcp-Method", "tools/call")
				r.Header.Set("Mcp-Name", "steps")
			}})
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != tt.want {
				t.Fatalf("status %d, Content-Type %q, want 200 and %q: %s", resp.StatusCode, ct, tt.want, readBody(t, resp))
			}
			var msgs []message
			if tt.want == "text/event-stream" {
				msgs = messages(t, readEvents(t, resp))
			} else {
				msgs = []message{decodeMessage(t, readBody(t, resp))}
			}
			var kinds []string
			for _, m := range msgs {
				if m.Method != "" {
					kinds = append(kinds, m.Method)
				} else {
					kinds = append(kinds, string(m.ID))
				}
			}
			if diff := cmp.Diff(tt.kinds, kinds); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if got := toolText(t, msgs[len(msgs)-1]); got != "done" {
				t.Errorf("result = %q, want done", got)
			}
		})
	}
}

// TestElicitation checks that a tool's server-to-client request on a legacy
// session is answered by a separate POST carrying the client's response,
// routed through the Inbox to the replica running the tool.
func TestElicitation(t *testing.T) {
	for _, tt := range []struct {
		name    string
		version string
		answer  string // the replica the response is POSTed to
	}{
		{"same replica", mcpserver.Version20250618, "a"},
		{"other replica", mcpserver.Version20250618, "b"},
		{"2025-11-25", mcpserver.Version20251125, "b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stores := memstore.New(nil)
			urls := map[string]string{"a": serve(t, stores, nil), "b": serve(t, stores, nil)}
			sid := initialize(t, urls["a"], "alice", tt.version, `{"elicitation":{}}`)
			resp := do(t, urls["a"], request{token: "alice", version: tt.version, session: sid, body: callBody(7, "tools/call", `{"name":"ask","arguments":{}}`)})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
			}

			type result struct {
				methods []string
				text    string
				err     error
			}
			done := make(chan result, 1)
			answered := make(chan string, 1) // the elicitation request's ID
			go func() {
				var res result
				defer func() { done <- res }()
				r := newSSEReader(resp.Body)
				for {
					ev, err := r.next()
					if err != nil {
						res.err = fmt.Errorf("stream ended before the result: %w", err)
						return
					}
					if ev.Data == "" {
						continue
					}
					var m message
					if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
						res.err = err
						return
					}
					res.methods = append(res.methods, m.Method)
					switch {
					case m.Method == "elicitation/create":
						answered <- string(m.ID)
					case m.Method == "" && string(m.ID) == "7":
						if m.Error != nil {
							res.err = fmt.Errorf("tools/call error %d %s", m.Error.Code, m.Error.Message)
							return
						}
						var r struct {
							Content []struct{ Text string }
						}
						if err := json.Unmarshal(m.Result, &r); err != nil || len(r.Content) != 1 {
							res.err = fmt.Errorf("tools/call result %s", m.Result)
							return
						}
						res.text = r.Content[0].Text
						return
					}
				}
			}()

			var id string
			select {
			case id = <-answered:
			case res := <-done:
				t.Fatalf("no elicitation/create: %+v", res)
			case <-time.After(timeout):
				t.Fatalf("no elicitation/create within %v", timeout)
			}
			answer := do(t, urls[tt.answer], request{token: "alice", version: tt.version, session: sid,
				body: `{"jsonrpc":"2.0","id":` + id + `,"result":{"action":"accept","content":{"name":"Ada"}}}`})
			if answer.StatusCode != http.StatusAccepted {
				t.Fatalf("answer status = %d, want 202: %s", answer.StatusCode, readBody(t, answer))
			}
			var res result
			select {
			case res = <-done:
			case <-time.After(timeout):
				t.Fatalf("no tools/call result within %v", timeout)
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			if diff := cmp.Diff([]string{"elicitation/create", ""}, res.methods); diff != "" {
				t.Errorf("stream messages (-want +got):\n%s", diff)
			}
			if res.text != "accept: Ada" {
				t.Errorf("tools/call = %q, want %q", res.text, "accept: Ada")
			}
		})
	}
}

// TestResourceUpdatedBroadcast checks that an owner's resource update
// reaches that owner's legacy GET streams that subscribed to the resource,
// and nobody else's.
func TestResourceUpdatedBroadcast(t *testing.T) {
	e := newEnv(t, nil)
	const version = mcpserver.Version20250618
	const uri = "notes://alice/1"
	subscribe := func(t *testing.T, token, sid string) {
		t.Helper()
		resp := e.do(t, request{token: token, version: version, session: sid, body: callBody(2, "resources/subscribe", `{"uri":"`+uri+`"}`)})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("subscribe: status %d: %s", resp.StatusCode, readBody(t, resp))
		}
		if m := lastMessage(t, resp); m.Error != nil {
			t.Fatalf("subscribe: %s", m.Error.Message)
		}
	}
	type stream struct {
		name, token, sid string
		subscribed       bool
		want             []string
	}
	streams := []*stream{
		{name: "alice subscribed", token: "alice", subscribed: true, want: []string{"notifications/resources/updated " + uri, "notifications/tools/list_changed"}},
		{name: "alice not subscribed", token: "alice", want: []string{"notifications/tools/list_changed"}},
		// bob's own resource of the same name is his to hear about.
		{name: "bob subscribed to the same URI", token: "bob", subscribed: true, want: []string{"notifications/resources/updated " + uri, "notifications/tools/list_changed"}},
		{name: "anonymous subscribed", subscribed: true, want: []string{"notifications/tools/list_changed"}},
	}
	readers := map[*stream]*sseReader{}
	for _, s := range streams {
		s.sid = e.initialize(t, s.token, version, "{}")
		if s.subscribed {
			subscribe(t, s.token, s.sid)
		}
		// A GET stream listens from the moment its headers arrive.
		resp := e.do(t, request{method: http.MethodGet, token: s.token, version: version, session: s.sid})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: status %d: %s", resp.StatusCode, readBody(t, resp))
		}
		readers[s] = newSSEReader(resp.Body)
	}

	n := mcpserver.NewNotifier(e.stores.Broadcaster)
	ctx := t.Context()
	if err := n.ResourceUpdated(ctx, "alice", uri); err != nil {
		t.Fatal(err)
	}
	if err := n.ResourceUpdated(ctx, "alice", "notes://alice/2"); err != nil { // nobody subscribed
		t.Fatal(err)
	}
	if err := n.ResourceUpdated(ctx, "bob", uri); err != nil { // bob's resource of the same URI
		t.Fatal(err)
	}
	// Every session gets the list change: it marks the end of what to read.
	if err := e.stores.Broadcaster.Publish(ctx, mcpserver.Broadcast{Method: "notifications/tools/list_changed"}); err != nil {
		t.Fatal(err)
	}

	for _, s := range streams {
		t.Run(s.name, func(t *testing.T) {
			var got []string
			for {
				ev, err := readers[s].next()
				if err != nil {
					t.Fatalf("GET stream: %v (got %q)", err, got)
				}
				if ev.Data == "" {
					continue
				}
				m := decodeMessage(t, []byte(ev.Data))
				var p struct{ URI string }
				json.Unmarshal(m.Params, &p)
				got = append(got, strings.TrimSpace(m.Method+" "+p.URI))
				if m.Method == "notifications/tools/list_changed" {
					break
				}
			}
			if diff := cmp.Diff(s.want, got); diff != "" {
				t.Errorf("notifications (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCancel checks that a client's notifications/cancelled, POSTed to any
// replica, cancels the tool and ends the request stream without a response.
func TestCancel(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cancel string // the replica the cancellation is POSTed to
	}{
		{"same replica", "a"},
		{"other replica", "b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stores := memstore.New(nil)
			urls := map[string]string{"a": serve(t, stores, nil), "b": serve(t, stores, nil)}
			const version = mcpserver.Version20251125
			sid := initialize(t, urls["a"], "alice", version, "{}")
			key, cancelled := newGate(t)
			started := make(chan struct{})
			gates.Store(key+"/started", started)
			t.Cleanup(func() { gates.Delete(key + "/started") })
			resp := do(t, urls["a"], request{token: "alice", version: version, session: sid,
				body: callBody(9, "tools/call", `{"name":"block","arguments":{"key":"`+key+`"}}`)})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
			}
			r := newSSEReader(resp.Body)
			if ev, err := r.next(); err != nil || ev.Data != "" {
				t.Fatalf("first event = %+v, %v; want priming", ev, err)
			}
			// A running tool is what is cancelled here (one cancelled before
			// the go-sdk read it never runs, which is right too).
			select {
			case <-started:
			case <-time.After(timeout):
				t.Fatalf("tool not started within %v", timeout)
			}
			c := do(t, urls[tt.cancel], request{token: "alice", version: version, session: sid,
				body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9,"reason":"test"}}`})
			if c.StatusCode != http.StatusAccepted {
				t.Fatalf("cancel status = %d, want 202: %s", c.StatusCode, readBody(t, c))
			}
			select {
			case <-cancelled:
			case <-time.After(timeout):
				t.Fatalf("tool not cancelled within %v", timeout)
			}
			var rest []event
			for {
				ev, err := r.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("read stream: %v", err)
				}
				rest = append(rest, ev)
			}
			if len(rest) != 0 {
				t.Errorf("stream of a cancelled request sent %+v, want nothing", rest)
			}
		})
	}
}

// TestResumeInFlight checks SEP-1699 end to end: the client loses the POST
// stream while the tool waits for an elicitation, resumes it with GET and
// Last-Event-ID, answers, and receives the result on the resumed stream.
func TestResumeInFlight(t *testing.T) {
	e := newEnv(t, nil)
	const version = mcpserver.Version20251125
	sid := e.initialize(t, "alice", version, `{"elicitation":{}}`)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url, strings.NewReader(callBody(3, "tools/call", `{"name":"ask","arguments":{}}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer alice")
	req.Header.Set("MCP-Protocol-Version", version)
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := newSSEReader(resp.Body)
	var ask event
	for ask.Data == "" {
		if ask, err = r.next(); err != nil {
			t.Fatalf("read POST stream: %v", err)
		}
	}
	elicit := decodeMessage(t, []byte(ask.Data))
	if elicit.Method != "elicitation/create" {
		t.Fatalf("first message = %s, want elicitation/create", ask.Data)
	}
	cancel() // the connection drops
	resp.Body.Close()

	get := e.do(t, request{method: http.MethodGet, token: "alice", version: version, session: sid,
		edit: func(r *http.Request) { r.Header.Set("Last-Event-ID", ask.ID) }})
	if get.StatusCode != http.StatusOK {
		t.Fatalf("GET status = %d: %s", get.StatusCode, readBody(t, get))
	}
	answer := e.do(t, request{token: "alice", version: version, session: sid,
		body: `{"jsonrpc":"2.0","id":` + string(elicit.ID) + `,"result":{"action":"accept","content":{"name":"Grace"}}}`})
	if answer.StatusCode != http.StatusAccepted {
		t.Fatalf("answer status = %d: %s", answer.StatusCode, readBody(t, answer))
	}
	msgs := messages(t, readEvents(t, get))
	if len(msgs) != 1 || string(msgs[0].ID) != "3" {
		t.Fatalf("resumed stream = %+v, want the tools/call result only", msgs)
	}
	if got := toolText(t, msgs[0]); got != "accept: Grace" {
		t.Errorf("tools/call = %q, want %q", got, "accept: Grace")
	}
}

// TestCloseSSEStream checks that a tool can end its POST stream with a retry
// hint (SEP-1699) and finish on the stream the client resumes.
func TestCloseSSEStream(t *testing.T) {
	e := newEnv(t, nil)
	const version = mcpserver.Version20251125
	sid := e.initialize(t, "alice", version, "{}")
	key, release := newGate(t)
	resp := e.do(t, request{token: "alice", version: version, session: sid,
		body: callBody(4, "tools/call", `{"name":"pause","arguments":{"key":"`+key+`"}}`)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	events := readEvents(t, resp)
	if len(events) != 2 || events[0].Data != "" || events[0].ID == "" || events[1].Retry != "50" {
		t.Fatalf("POST stream = %+v, want priming, then retry: 50", events)
	}
	close(release)
	get := e.do(t, request{method: http.MethodGet, token: "alice", version: version, session: sid,
		edit: func(r *http.Request) { r.Header.Set("Last-Event-ID", events[0].ID) }})
	if get.StatusCode != http.StatusOK {
		t.Fatalf("GET status = %d: %s", get.StatusCode, readBody(t, get))
	}
	msgs := messages(t, readEvents(t, get))
	if len(msgs) != 1 || toolText(t, msgs[0]) != "resumed" {
		t.Errorf("resumed stream = %+v, want the tools/call result", msgs)
	}
}

// TestGETStream checks a session's standalone GET stream: a newer GET
// replaces an older one, and Last-Event-ID replays what the client missed.
func TestGETStream(t *testing.T) {
	e := newEnv(t, nil)
	const version = mcpserver.Version20251125
	sid := e.initialize(t, "alice", version, "{}")
	open := func(lastEventID string) *sseReader {
		t.Helper()
		resp := e.do(t, request{method: http.MethodGet, token: "alice", version: version, session: sid, edit: func(r *http.Request) {
			if lastEventID != "" {
				r.Header.Set("Last-Event-ID", lastEventID)
			}
		}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET status = %d: %s", resp.StatusCode, readBody(t, resp))
		}
		return newSSEReader(resp.Body)
	}
	// nextMessage skips priming events.
	nextMessage := func(r *sseReader) event {
		t.Helper()
		for {
			ev, err := r.next()
			if err != nil {
				t.Fatalf("read GET stream: %v", err)
			}
			if ev.Data != "" {
				return ev
			}
		}
	}
	publish := func(method string) {
		t.Helper()
		if err := e.stores.Broadcaster.Publish(t.Context(), mcpserver.Broadcast{Method: method}); err != nil {
			t.Fatal(err)
		}
	}

	first := open("")
	publish("notifications/tools/list_changed")
	publish("notifications/prompts/list_changed")
	publish("notifications/unknown") // not for clients: dropped
	got1, got2 := nextMessage(first), nextMessage(first)

	second := open(got1.ID) // replaces the first, replaying what followed got1
	if _, err := first.next(); !errors.Is(err, io.EOF) {
		t.Errorf("replaced GET stream: next = %v, want EOF", err)
	}
	if diff := cmp.Diff(got2, nextMessage(second)); diff != "" {
		t.Errorf("replayed event (-want +got):\n%s", diff)
	}
	publish("notifications/resources/list_changed")
	got3 := nextMessage(second)
	if m := decodeMessage(t, []byte(got3.Data)); m.Method != "notifications/resources/list_changed" {
		t.Errorf("live event after replay = %s, want notifications/resources/list_changed", got3.Data)
	}
	var ids []string
	for _, ev := range []event{got1, got2, got3} {
		ids = append(ids, ev.ID)
	}
	if diff := cmp.Diff([]string{"_-1", "_-2", "_-3"}, ids); diff != "" {
		t.Errorf("GET stream event IDs (-want +got):\n%s", diff)
	}
}

// TestResourceUpdatedModernListen checks that an owner's resource update
// reaches that owner's 2026-07-28 subscriptions/listen streams only.
func TestResourceUpdatedModernListen(t *testing.T) {
	const uri, other = "notes://index", "notes://other"
	for _, tt := range []struct {
		name string
		// aliceLegacyListen also has alice run subscriptions/listen inside a
		// legacy session: the go-sdk then notifies that session first.
		aliceLegacyListen bool
	}{
		{name: "modern listeners"},
		// This once leaked alice's update to bob: the owner tag was
		// stripped in place on params the go-sdk shares among sessions.
		{name: "alice also listens on a legacy session", aliceLegacyListen: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, &mcpserver.Options{MaxRequestDuration: 2 * timeout})
			listen := func(token, uris string) *sseReader {
				t.Helper()
				body := modernBody("subscriptions/listen", mcpserver.Version20260728, `,"notifications":{"resourceSubscriptions":`+uris+`}`)
				resp := e.do(t, request{token: token, version: mcpserver.Version20260728, body: body,
					edit: func(r *http.Request) { r.Header.Set("Mcp-Method", "subscriptions/listen") }})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("listen: status %d: %s", resp.StatusCode, readBody(t, resp))
				}
				r := newSSEReader(resp.Body)
				for {
					ev, err := r.next()
					if err != nil {
						t.Fatalf("listen: %v", err)
					}
					if ev.Data != "" && decodeMessage(t, []byte(ev.Data)).Method == "notifications/subscriptions/acknowledged" {
						return r
					}
				}
			}
			if tt.aliceLegacyListen {
				sid := e.initialize(t, "alice", mcpserver.Version20251125, "{}")
				resp := e.do(t, request{token: "alice", version: mcpserver.Version20251125, session: sid,
					body: callBody(5, "subscriptions/listen", `{"notifications":{"resourceSubscriptions":["`+uri+`"]}}`)})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("legacy listen: status %d: %s", resp.StatusCode, readBody(t, resp))
				}
				r := newSSEReader(resp.Body)
				for {
					ev, err := r.next()
					if err != nil {
						t.Fatalf("legacy listen: %v", err)
					}
					if ev.Data != "" {
						break // acknowledged
					}
				}
			}
			alice := listen("alice", `["`+uri+`","`+other+`"]`)
			bob := listen("bob", `["`+uri+`","`+other+`"]`)

			n := mcpserver.NewNotifier(e.stores.Broadcaster)
			if err := n.ResourceUpdated(t.Context(), "alice", uri); err != nil {
				t.Fatal(err)
			}
			// Everyone's update of another URI marks the end of what to read.
			if err := n.ResourceUpdated(t.Context(), "", other); err != nil {
				t.Fatal(err)
			}
			for _, s := range []struct {
				name string
				r    *sseReader
				want []string
			}{
				{"alice", alice, []string{uri, other}},
				{"bob", bob, []string{other}},
			} {
				var got []string
				for {
					ev, err := s.r.next()
					if err != nil {
						t.Fatalf("%s: read: %v (got %q)", s.name, err, got)
					}
					if ev.Data == "" {
						continue
					}
					m := decodeMessage(t, []byte(ev.Data))
					if m.Method != "notifications/resources/updated" {
						continue
					}
					var p struct {
						URI  string         `json:"uri"`
						Meta map[string]any `json:"_meta"`
					}
					json.Unmarshal(m.Params, &p)
					if _, leaked := p.Meta["remotemcp/owner"]; leaked {
						t.Errorf("%s: the owner tag reached the wire: %s", s.name, m.Params)
					}
					got = append(got, p.URI)
					if p.URI == other {
						break
					}
				}
				if diff := cmp.Diff(s.want, got); diff != "" {
					t.Errorf("%s's resource updates (-want +got):\n%s", s.name, diff)
				}
			}
		})
	}
}

// TestBatchLimits: a 2025-03-26 batch of more messages than
// Options.MaxBatchMessages is refused whole before any call runs, and the
// responses of one request stop at Options.MaxResponseBytes: past it, each
// response is an error that says why.
func TestBatchLimits(t *testing.T) {
	e := newEnv(t, &mcpserver.Options{MaxBatchMessages: 10, MaxResponseBytes: 2000})
	sid := e.initialize(t, "", mcpserver.Version20250326, "{}")
	batch := func(n int, call func(i int) string) string {
		var calls []string
		for i := range n {
			calls = append(calls, call(i))
		}
		return "[" + strings.Join(calls, ",") + "]"
	}
	key := t.Name()
	t.Cleanup(func() { tallies.Delete(key) })
	tally := func(i int) string {
		return callBody(100+i, "tools/call", `{"name":"tally","arguments":{"key":"`+key+`"}}`)
	}

	t.Run("too many messages", func(t *testing.T) {
		resp := e.do(t, request{session: sid, body: batch(11, tally)})
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest || errorCode(t, body) != codeInvalidRequest {
			t.Fatalf("batch of 11 = %d %s, want 400 with %d", resp.StatusCode, body, codeInvalidRequest)
		}
		if !strings.Contains(string(body), "at most 10 messages") {
			t.Errorf("batch of 11: error %s does not name the limit", body)
		}
		if n, ok := tallies.Load(key); ok {
			t.Errorf("batch of 11 ran %d calls, want none", n.(*atomic.Int64).Load())
		}
	})

	t.Run("at the limit", func(t *testing.T) {
		resp := e.do(t, request{session: sid, body: batch(10, tally)})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("batch of 10 = %d %s", resp.StatusCode, readBody(t, resp))
		}
		if got := len(messages(t, readEvents(t, resp))); got != 10 {
			t.Errorf("batch of 10: %d responses, want 10", got)
		}
	})

	t.Run("too many bytes", func(t *testing.T) {
		// Each echo answers about 600 bytes: three fit in 2000, the rest do not.
		text := strings.Repeat("x", 500)
		resp := e.do(t, request{session: sid, body: batch(10, func(i int) string {
			return callBody(200+i, "tools/call", `{"name":"echo","arguments":{"text":"`+text+`"}}`)
		})})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
		}
		msgs := messages(t, readEvents(t, resp))
		if len(msgs) != 10 {
			t.Fatalf("%d responses, want one per call (10)", len(msgs))
		}
		ok, size := 0, 0
		for _, m := range msgs {
			switch {
			case m.Error == nil:
				ok++
				size += len(m.Result)
			case m.Error.Code != -32000 || !strings.Contains(m.Error.Message, "at most 2000 bytes"):
				t.Errorf("response %s: error %d %q, want -32000 naming the limit", m.ID, m.Error.Code, m.Error.Message)
			}
		}
		if ok == 0 || ok == 10 || size > 2000 {
			t.Errorf("%d results of %d bytes in all; want some, but not all, within 2000 bytes", ok, size)
		}
	})
}

// TestSessionLimit: a subject at its stores' limit of sessions gets 429
// with a JSON-RPC error that says what to do; other subjects are
// unaffected, and ending a session makes room.
func TestSessionLimit(t *testing.T) {
	stores := memstore.New(&memstore.Options{MaxSessionsPerSubject: 2})
	e := &env{url: serve(t, stores, nil), stores: stores}
	first := e.initialize(t, "alice", mcpserver.Version20251125, "{}")
	e.initialize(t, "alice", mcpserver.Version20251125, "{}")
	resp := e.do(t, request{token: "alice", body: initializeBody(mcpserver.Version20251125, "{}")})
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusTooManyRequests || errorCode(t, body) != -32000 ||
		!strings.Contains(string(body), "too many open sessions") || !strings.Contains(string(body), "DELETE") {
		t.Fatalf("third session = %d %s, want 429 with -32000 saying what to do", resp.StatusCode, body)
	}
	if resp.Header.Get("Mcp-Session-Id") != "" {
		t.Errorf("the refused initialize got a session: %q", resp.Header.Get("Mcp-Session-Id"))
	}
	e.initialize(t, "bob", mcpserver.Version20251125, "{}")
	del := e.do(t, request{method: http.MethodDelete, token: "alice", version: mcpserver.Version20251125, session: first})
	if del.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE = %d", del.StatusCode)
	}
	e.initialize(t, "alice", mcpserver.Version20251125, "{}")
}
