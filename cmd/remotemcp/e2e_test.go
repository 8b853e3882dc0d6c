package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// e2eTimeout bounds every wait of the end-to-end tests.
const e2eTimeout = 20 * time.Second

// e2eShutdownTimeout is the --shutdown-timeout of every test server; run must
// return within it plus 2s of being cancelled.
const e2eShutdownTimeout = 2 * time.Second

// syncBuffer is a bytes.Buffer safe for the server's logger and the test to
// share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// e2eServer is the real binary's run() serving on a loopback port.
type e2eServer struct {
	addr     string // host:port it listens on
	base     string // http://addr
	endpoint string // base + "/mcp", as logged
	stdout   *syncBuffer
	// client is the HTTP client of every request the test makes: its own
	// transport, so that cleanup can close its idle connections.
	client *http.Client

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	stopErr  error
}

var listeningLine = regexp.MustCompile(`msg="remotemcp listening" addr=(\S+) endpoint=(\S+)`)

// startServer runs run() with --listen 127.0.0.1:0 --fixtures conformance
// --log-format text --shutdown-timeout 2s plus args, and returns once
// /healthz answers. Cleanup stops it and checks that run returns nil in time.
func startServer(t *testing.T, args ...string) *e2eServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &e2eServer{stdout: &syncBuffer{}, client: &http.Client{Transport: &http.Transport{}}, cancel: cancel, done: make(chan error, 1)}
	stderr := &syncBuffer{}
	all := append([]string{"--listen", "127.0.0.1:0", "--fixtures", "conformance", "--log-format", "text",
		"--shutdown-timeout", e2eShutdownTimeout.String()}, args...)
	go func() { s.done <- run(ctx, all, func(string) string { return "" }, s.stdout, stderr) }()
	t.Cleanup(func() {
		// The test is done with its connections. Closing the idle ones also
		// closes any the transport dialed but never used, which would
		// otherwise hold the drain (see TestEndToEndShutdownUnusedConnection).
		s.client.CloseIdleConnections()
		if err := s.stop(e2eShutdownTimeout + 2*time.Second); err != nil {
			t.Errorf("run returned %v after cancel, want nil", err)
		}
		if t.Failed() {
			t.Logf("server stdout:\n%s\nserver stderr:\n%s", s.stdout.String(), stderr.String())
		}
	})

	deadline := time.Now().Add(e2eTimeout)
	for s.addr == "" {
		if m := listeningLine.FindStringSubmatch(s.stdout.String()); m != nil {
			s.addr, s.endpoint = m[1], m[2]
			break
		}
		select {
		case err := <-s.done:
			s.done <- err // for stop
			t.Fatalf("run returned %v before listening; stderr: %s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line in stdout:\n%s", "remotemcp listening", s.stdout.String())
		}
	}
	s.base = "http://" + s.addr
	if want := s.base + "/mcp"; s.endpoint != want {
		t.Errorf("logged endpoint = %q, want %q (the bound port)", s.endpoint, want)
	}

	hctx, hcancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer hcancel()
	for {
		if status, _ := s.get(hctx, "/healthz"); status == http.StatusOK {
			break
		}
		select {
		case <-hctx.Done():
			t.Fatal("/healthz never answered 200")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return s
}

// stop cancels run's context and waits up to bound for it to return.
func (s *e2eServer) stop(bound time.Duration) error {
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case s.stopErr = <-s.done:
		case <-time.After(bound):
			s.stopErr = fmt.Errorf("run did not return within %v", bound)
		}
	})
	return s.stopErr
}

// get fetches a path of the server, returning 0 if it cannot connect.
func (s *e2eServer) get(ctx context.Context, path string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// connect opens a go-sdk client session in the given protocol era.
func (s *e2eServer) connect(t *testing.T, ctx context.Context, version string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-test", Version: "1.0.0"}, opts)
	transport := &mcp.StreamableClientTransport{Endpoint: s.endpoint, HTTPClient: s.client}
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect %s: %v", version, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// textOf returns the text of a single-text-content result.
func textOf(t *testing.T, content []mcp.Content) string {
	t.Helper()
	if len(content) != 1 {
		t.Fatalf("got %d content blocks, want 1", len(content))
	}
	tc, ok := content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content is %T, want *mcp.TextContent", content[0])
	}
	return tc.Text
}

// TestEndToEndEras drives the features every era shares through the go-sdk
// client, once over a legacy session and once statelessly.
func TestEndToEndEras(t *testing.T) {
	s := startServer(t)
	for _, tt := range []struct {
		version     string
		wantSession bool
	}{
		{"2025-11-25", true},
		{"2026-07-28", false},
	} {
		t.Run(tt.version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
			defer cancel()
			// The progress subtest's second call is a barrier (see there):
			// barrierDone closes when its third notification is handled.
			barrierToken := "barrier-" + tt.version
			var (
				mu          sync.Mutex
				progress    []*mcp.ProgressNotificationParams
				barrier     int
				barrierDone = make(chan struct{})
			)
			cs := s.connect(t, ctx, tt.version, &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
					mu.Lock()
					defer mu.Unlock()
					if req.Params.ProgressToken != barrierToken {
						progress = append(progress, req.Params)
						return
					}
					if barrier++; barrier == 3 {
						close(barrierDone)
					}
				},
			})
			initRes := cs.InitializeResult()
			if initRes.ProtocolVersion != tt.version {
				t.Errorf("negotiated version = %q, want %q", initRes.ProtocolVersion, tt.version)
			}
			if initRes.ServerInfo == nil || initRes.ServerInfo.Name != "remotemcp" {
				t.Errorf("serverInfo = %+v, want name remotemcp", initRes.ServerInfo)
			}
			if hasSession := cs.ID() != ""; hasSession != tt.wantSession {
				t.Errorf("session id %q, want a session: %v", cs.ID(), tt.wantSession)
			}

			t.Run("tools/list", func(t *testing.T) {
				var names []string
				for tool, err := range cs.Tools(ctx, nil) {
					if err != nil {
						t.Fatal(err)
					}
					names = append(names, tool.Name)
				}
				for _, want := range []string{"test_simple_text", "test_tool_with_progress", "test_input_required_result_elicitation"} {
					if !slices.Contains(names, want) {
						t.Errorf("tools/list lacks %s: %v", want, names)
					}
				}
			})

			t.Run("tools/call", func(t *testing.T) {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"})
				if err != nil {
					t.Fatal(err)
				}
				if res.IsError {
					t.Errorf("isError set: %+v", res)
				}
				if diff := cmp.Diff("This is a simple text response for testing.", textOf(t, res.Content)); diff != "" {
					t.Errorf("text (-want +got):\n%s", diff)
				}
			})

			t.Run("progress", func(t *testing.T) {
				call := func(token string) {
					t.Helper()
					params := &mcp.CallToolParams{Name: "test_tool_with_progress"}
					params.SetProgressToken(token)
					res, err := cs.CallTool(ctx, params)
					if err != nil {
						t.Fatal(err)
					}
					if got := textOf(t, res.Content); got != token {
						t.Errorf("result text = %q, want the token %q", got, token)
					}
				}
				token := "progress-" + tt.version
				call(token)
				// The client hands notifications to its handler one at a
				// time, in the order they arrived, and a call's come before
				// its result: once the second call's three are handled, the
				// first call's, a stray fourth included, have been too.
				call(barrierToken)
				select {
				case <-barrierDone:
				case <-ctx.Done():
				}
				mu.Lock()
				defer mu.Unlock()
				type step struct {
					Token           any
					Progress, Total float64
				}
				var got []step
				for _, p := range progress {
					got = append(got, step{p.ProgressToken, p.Progress, p.Total})
				}
				want := []step{{token, 0, 100}, {token, 50, 100}, {token, 100, 100}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("progress notifications (-want +got):\n%s", diff)
				}
			})

			t.Run("resources/read", func(t *testing.T) {
				res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://static-text"})
				if err != nil {
					t.Fatal(err)
				}
				want := []*mcp.ResourceContents{{URI: "test://static-text", MIMEType: "text/plain", Text: "This is the content of the static text resource."}}
				if diff := cmp.Diff(want, res.Contents); diff != "" {
					t.Errorf("contents (-want +got):\n%s", diff)
				}
			})

			t.Run("prompts/get", func(t *testing.T) {
				res, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{
					Name:      "test_prompt_with_arguments",
					Arguments: map[string]string{"arg1": "alpha", "arg2": "beta"},
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Messages) != 1 {
					t.Fatalf("got %d messages, want 1", len(res.Messages))
				}
				want := &mcp.PromptMessage{Role: "user", Content: &mcp.TextContent{Text: "Prompt with arguments: arg1='alpha', arg2='beta'"}}
				if diff := cmp.Diff(want, res.Messages[0]); diff != "" {
					t.Errorf("message (-want +got):\n%s", diff)
				}
			})

			t.Run("completion/complete", func(t *testing.T) {
				res, err := cs.Complete(ctx, &mcp.CompleteParams{
					Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: "test_prompt_with_arguments"},
					Argument: mcp.CompleteParamsArgument{Name: "arg1", Value: "a"},
				})
				if err != nil {
					t.Fatal(err)
				}
				if res.Completion.Values == nil {
					t.Error("completion values are null, want an array")
				}
				if len(res.Completion.Values) > 100 {
					t.Errorf("%d completion values, want at most 100", len(res.Completion.Values))
				}
			})
		})
	}
}

// TestEndToEndLegacy covers what only sessions have: server-to-client
// requests on the POST stream, and session termination.
func TestEndToEndLegacy(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()
	var (
		mu       sync.Mutex
		messages []string
	)
	cs := s.connect(t, ctx, "2025-11-25", &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			mu.Lock()
			messages = append(messages, req.Params.Message)
			mu.Unlock()
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"username": "gopher", "name": "Ada"}}, nil
		},
	})
	sid := cs.ID()
	if sid == "" {
		t.Fatal("legacy session has no Mcp-Session-Id")
	}

	t.Run("elicitation", func(t *testing.T) {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_elicitation", Arguments: map[string]any{"message": "Who are you?"}})
		if err != nil {
			t.Fatal(err)
		}
		got := textOf(t, res.Content)
		for _, want := range []string{"action=accept", "gopher"} {
			if !strings.Contains(got, want) {
				t.Errorf("result %q does not contain %q", got, want)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(messages, "Who are you?") {
			t.Errorf("elicitation messages = %q, want the tool's message", messages)
		}
	})

	t.Run("input required answered in band", func(t *testing.T) {
		// A legacy client knows nothing of input_required: the server asks
		// with elicitation/create on the POST stream and retries the tool.
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_input_required_result_elicitation"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff("Hello, Ada!", textOf(t, res.Content)); diff != "" {
			t.Errorf("text (-want +got):\n%s", diff)
		}
	})

	// The session is live for raw requests too...
	list := `{"jsonrpc":"2.0","id":99,"method":"tools/list","params":{}}`
	hdr := http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {"2025-11-25"}}
	if resp := s.post(t, ctx, hdr, list); resp.status != http.StatusOK {
		t.Fatalf("POST in a live session: status %d, want 200", resp.status)
	}
	// ...until Close sends DELETE; then the id is unknown.
	if err := cs.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	resp := s.post(t, ctx, hdr, list)
	if resp.status != http.StatusNotFound {
		t.Errorf("POST after DELETE: status %d, want 404", resp.status)
	}
	if msg := resp.last(t); msg.Error == nil {
		t.Errorf("404 body %s is not a JSON-RPC error", resp.body)
	}
}

// TestEndToEndModern covers multi round-trip requests (SEP-2322) in the
// stateless era, through the go-sdk client and on the wire.
func TestEndToEndModern(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()

	t.Run("client answers input_required", func(t *testing.T) {
		var (
			mu       sync.Mutex
			messages []string
		)
		cs := s.connect(t, ctx, "2026-07-28", &mcp.ClientOptions{
			ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				mu.Lock()
				messages = append(messages, req.Params.Message)
				mu.Unlock()
				switch {
				case strings.Contains(req.Params.Message, "color"):
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"color": "blue"}}, nil
				case strings.Contains(req.Params.Message, "confirm"):
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"ok": true}}, nil
				}
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
			},
		})
		if cs.ID() != "" {
			t.Errorf("stateless session has id %q", cs.ID())
		}
		for _, tt := range []struct {
			tool         string
			want         string
			wantMessages []string
		}{
			{"test_input_required_result_elicitation", "Hello, Ada!", []string{"What is your name?"}},
			{"test_input_required_result_multi_round", "Multi-round complete: Ada likes blue", []string{"Step 1: What is your name?", "Step 2: What is your favorite color?"}},
			{"test_input_required_result_request_state", "state-ok: requestState received and confirmation accepted", []string{"Please confirm"}},
		} {
			t.Run(tt.tool, func(t *testing.T) {
				mu.Lock()
				messages = nil
				mu.Unlock()
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tt.tool})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, textOf(t, res.Content)); diff != "" {
					t.Errorf("text (-want +got):\n%s", diff)
				}
				mu.Lock()
				defer mu.Unlock()
				if diff := cmp.Diff(tt.wantMessages, messages); diff != "" {
					t.Errorf("elicitations (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("requestState on the wire", func(t *testing.T) {
		const tool = "test_input_required_result_tampered_state"
		call := func(t *testing.T, id int, extra map[string]any) rpcMessage {
			t.Helper()
			params := map[string]any{
				"name":      tool,
				"arguments": map[string]any{},
				"_meta": map[string]any{
					"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
					"io.modelcontextprotocol/clientCapabilities": map[string]any{"elicitation": map[string]any{}},
					"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "e2e-raw", "version": "1.0.0"},
				},
			}
			for k, v := range extra {
				params[k] = v
			}
			body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
			resp := s.post(t, ctx, http.Header{
				"Mcp-Protocol-Version": {"2026-07-28"},
				"Mcp-Method":           {"tools/call"},
				"Mcp-Name":             {tool},
			}, string(body))
			if resp.header.Get("Mcp-Session-Id") != "" {
				t.Errorf("stateless response minted Mcp-Session-Id %q", resp.header.Get("Mcp-Session-Id"))
			}
			msg := resp.last(t)
			if string(msg.ID) != fmt.Sprint(id) {
				t.Errorf("response id %s, want %d", msg.ID, id)
			}
			return msg
		}

		first := call(t, 1, nil)
		var ir struct {
			ResultType    string `json:"resultType"`
			InputRequests map[string]struct {
				Method string `json:"method"`
			} `json:"inputRequests"`
			RequestState string `json:"requestState"`
		}
		first.result(t, &ir)
		if ir.ResultType != "input_required" || ir.InputRequests["confirm"].Method != "elicitation/create" || ir.RequestState == "" {
			t.Fatalf("first round = %s, want input_required with an elicitation/create under \"confirm\" and a requestState", first.Result)
		}
		answer := map[string]any{"confirm": map[string]any{"action": "accept", "content": map[string]any{"ok": true}}}

		var done struct {
			ResultType string            `json:"resultType"`
			Content    []json.RawMessage `json:"content"`
		}
		call(t, 2, map[string]any{"inputResponses": answer, "requestState": ir.RequestState}).result(t, &done)
		if done.ResultType != "complete" || len(done.Content) != 1 || !strings.Contains(string(done.Content[0]), "state-ok") {
			t.Errorf("retry with the state = %+v, want a complete result with state-ok", done)
		}

		for _, tc := range []struct{ name, state string }{
			{"suffix", ir.RequestState + "-TAMPERED"},
			{"flipped body", flipFirst(ir.RequestState)},
			{"garbage", "not-a-state"},
		} {
			t.Run("tampered "+tc.name, func(t *testing.T) {
				msg := call(t, 3, map[string]any{"inputResponses": answer, "requestState": tc.state})
				if msg.Error == nil {
					t.Fatalf("tampered requestState accepted: %s", msg.Result)
				}
				if msg.Error.Code != -32602 {
					t.Errorf("error code %d (%s), want -32602", msg.Error.Code, msg.Error.Message)
				}
			})
		}
	})
}

// flipFirst changes the first character of s.
func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// TestEndToEndResumption closes a legacy POST stream mid-call (SEP-1699) and
// collects the tool result by resuming with GET and Last-Event-ID.
func TestEndToEndResumption(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()
	sid := s.initLegacy(t, ctx)
	hdr := http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {"2025-11-25"}}

	resp := s.postStream(t, ctx, hdr, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"test_reconnection","arguments":{}}}`)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("tools/call Content-Type %q, want text/event-stream", ct)
	}
	var lastID string
	var sawRetry, sawResult bool
	err := readSSE(resp.Body, func(e sseEvent) bool {
		if e.id != "" {
			lastID = e.id
		}
		sawRetry = sawRetry || e.retry != ""
		sawResult = sawResult || strings.Contains(e.data, `"id":7`)
		return true
	})
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the POST stream: %v", err)
	}
	if !sawRetry {
		t.Error("the server closed the POST stream without a retry: field")
	}
	if sawResult {
		t.Fatal("the result arrived on the POST stream, which was to be closed before it")
	}
	if lastID == "" {
		t.Fatal("no event id (priming event) on the POST stream to resume from")
	}

	get := s.sseGET(t, ctx, hdr, lastID)
	defer get.Body.Close()
	if get.StatusCode != http.StatusOK {
		t.Fatalf("GET with Last-Event-ID: status %d", get.StatusCode)
	}
	var result *rpcMessage
	err = readSSE(get.Body, func(e sseEvent) bool {
		if e.data == "" {
			return true
		}
		var m rpcMessage
		if json.Unmarshal([]byte(e.data), &m) == nil && string(m.ID) == "7" {
			result = &m
			return false
		}
		return true
	})
	if err != nil {
		t.Fatalf("reading the resumed stream: %v", err)
	}
	if result == nil {
		t.Fatal("the resumed stream ended without the tool result")
	}
	var res mcp.CallToolResult
	result.result(t, &res)
	if got := textOf(t, res.Content); !strings.HasPrefix(got, "Reconnection test completed successfully") {
		t.Errorf("resumed result text = %q", got)
	}
}

// TestEndToEndShutdown cancels run while a legacy GET stream is open: the
// stream must end and run must return nil within the shutdown timeout.
func TestEndToEndShutdown(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()

	if status, body := s.get(ctx, "/readyz"); status != http.StatusOK {
		t.Errorf("/readyz while serving: %d %q, want 200", status, body)
	}
	if status, body := s.get(ctx, "/healthz"); status != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz while serving: %d %q, want 200 ok", status, body)
	}

	sid := s.initLegacy(t, ctx)
	get := s.sseGET(t, ctx, http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {"2025-11-25"}}, "")
	defer get.Body.Close()
	if get.StatusCode != http.StatusOK || !strings.HasPrefix(get.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET stream: status %d, Content-Type %q", get.StatusCode, get.Header.Get("Content-Type"))
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, get.Body)
		ended <- err
	}()

	// Only the stream stays open (see TestEndToEndShutdownUnusedConnection).
	s.client.CloseIdleConnections()
	start := time.Now()
	bound := e2eShutdownTimeout + 2*time.Second
	if err := s.stop(bound); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	t.Logf("run returned %v after cancel", time.Since(start).Round(time.Millisecond))
	select {
	case <-ended:
	case <-time.After(bound - time.Since(start)):
		t.Error("the GET stream is still open after run returned")
	}
	if !strings.Contains(s.stdout.String(), `msg=stopped`) {
		t.Errorf("no stopped line in the log:\n%s", s.stdout.String())
	}
	// The stream is logged when it ends (after the second it was drained
	// for), with the status net/http sent.
	if !regexp.MustCompile(`msg=request method=GET path=/mcp status=200 duration=[0-9.]+s `).MatchString(s.stdout.String()) {
		t.Errorf("no access-log line for the GET stream, logged when it ended:\n%s", s.stdout.String())
	}
	if status, _ := s.get(ctx, "/healthz"); status != 0 {
		t.Errorf("/healthz after shutdown answered %d", status)
	}
}

// TestEndToEndShutdownUnusedConnection: a client connection that never sent
// a request (a pre-connect by a browser or an HTTP transport's spare dial, a
// load balancer's TCP check) must not turn a graceful shutdown into an error.
func TestEndToEndShutdownUnusedConnection(t *testing.T) {
	s := startServer(t)
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if err := s.stop(e2eShutdownTimeout + 2*time.Second); err != nil {
		t.Fatalf("run after cancel, with an unused connection open: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	}
}

// Raw HTTP helpers.

// rpcMessage is a JSON-RPC response as it appears on the wire.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func (m rpcMessage) result(t *testing.T, v any) {
	t.Helper()
	if m.Error != nil {
		t.Fatalf("JSON-RPC error %d: %s", m.Error.Code, m.Error.Message)
	}
	if err := json.Unmarshal(m.Result, v); err != nil {
		t.Fatalf("result %s: %v", m.Result, err)
	}
}

type rawResponse struct {
	status int
	header http.Header
	body   []byte
	msgs   []rpcMessage // the JSON body, or the data of each SSE event
}

// last returns the final JSON-RPC message of the response.
func (r rawResponse) last(t *testing.T) rpcMessage {
	t.Helper()
	if len(r.msgs) == 0 {
		t.Fatalf("status %d: no JSON-RPC message in %q", r.status, r.body)
	}
	return r.msgs[len(r.msgs)-1]
}

func (s *e2eServer) newPOST(t *testing.T, ctx context.Context, hdr http.Header, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	return req
}

// post sends one JSON-RPC message and reads the whole response.
func (s *e2eServer) post(t *testing.T, ctx context.Context, hdr http.Header, body string) rawResponse {
	t.Helper()
	resp, err := s.client.Do(s.newPOST(t, ctx, hdr, body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := rawResponse{status: resp.StatusCode, header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var buf bytes.Buffer
		err = readSSE(io.TeeReader(resp.Body, &buf), func(e sseEvent) bool {
			var m rpcMessage
			if e.data != "" && json.Unmarshal([]byte(e.data), &m) == nil {
				r.msgs = append(r.msgs, m)
			}
			return true
		})
		r.body = buf.Bytes()
	} else {
		r.body, err = io.ReadAll(resp.Body)
		var m rpcMessage
		if len(r.body) > 0 && json.Unmarshal(r.body, &m) == nil {
			r.msgs = append(r.msgs, m)
		}
	}
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return r
}

// postStream sends one JSON-RPC message and returns the open response.
func (s *e2eServer) postStream(t *testing.T, ctx context.Context, hdr http.Header, body string) *http.Response {
	t.Helper()
	resp, err := s.client.Do(s.newPOST(t, ctx, hdr, body))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("POST %s: status %d: %s", body, resp.StatusCode, b)
	}
	return resp
}

// sseGET opens a legacy GET stream, resuming after lastEventID if set.
func (s *e2eServer) sseGET(t *testing.T, ctx context.Context, hdr http.Header, lastEventID string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// initLegacy runs the 2025-11-25 handshake on the wire and returns the
// session id.
func (s *e2eServer) initLegacy(t *testing.T, ctx context.Context) string {
	t.Helper()
	resp := s.post(t, ctx, nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e-raw","version":"1.0.0"}}}`)
	if resp.status != http.StatusOK {
		t.Fatalf("initialize: status %d: %s", resp.status, resp.body)
	}
	var init mcp.InitializeResult
	resp.last(t).result(t, &init)
	if init.ProtocolVersion != "2025-11-25" {
		t.Errorf("initialize negotiated %q, want 2025-11-25", init.ProtocolVersion)
	}
	sid := resp.header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("initialize response has no Mcp-Session-Id")
	}
	hdr := http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {"2025-11-25"}}
	if r := s.post(t, ctx, hdr, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); r.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: status %d, want 202", r.status)
	}
	return sid
}

// sseEvent is one server-sent event.
type sseEvent struct{ id, event, data, retry string }

// readSSE calls fn for each event (and for each bare retry: field) until fn
// returns false or the stream ends; a stream that ends is not an error.
func readSSE(r io.Reader, fn func(sseEvent) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var e sseEvent
	var data []string
	pending := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if pending {
				e.data = strings.Join(data, "\n")
				if !fn(e) {
					return nil
				}
			}
			e, data, pending = sseEvent{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		pending = true
		switch field {
		case "id":
			e.id = value
		case "event":
			e.event = value
		case "data":
			data = append(data, value)
		case "retry":
			e.retry = value
		}
	}
	if pending {
		e.data = strings.Join(data, "\n")
		fn(e)
	}
	return sc.Err()
}
