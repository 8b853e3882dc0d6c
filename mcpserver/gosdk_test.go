package mcpserver

// The tests of this file pin down the go-sdk behaviours that this package's
// workarounds rely on, by exercising the go-sdk directly: a server and
// sessions connected through rawConn, a connection that hands the test
// what the server writes. When a go-sdk upgrade changes one of them, its
// test fails and names the workaround to revisit (remove it, or adapt it).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sdkWait bounds a wait for the server to write something (a condition,
// not time to pass): only a broken behaviour ever reaches it.
const sdkWait = 10 * time.Second

// A rawConn is a server session's connection: the test writes what the
// client sends to in and reads what the server writes from out.
type rawConn struct {
	in       chan jsonrpc.Message
	out      chan jsonrpc.Message
	writeErr func(jsonrpc.Message) error // if set, fails the writes it returns an error for
	done     chan struct{}
	once     sync.Once
}

func newRawConn() *rawConn {
	return &rawConn{in: make(chan jsonrpc.Message, 16), out: make(chan jsonrpc.Message, 64), done: make(chan struct{})}
}

func (c *rawConn) Connect(context.Context) (mcp.Connection, error) { return c, nil }
func (c *rawConn) SessionID() string                               { return "" }

func (c *rawConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case m := <-c.in:
		return m, nil
	case <-c.done:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *rawConn) Write(ctx context.Context, m jsonrpc.Message) error {
	if c.writeErr != nil {
		if err := c.writeErr(m); err != nil {
			return err
		}
	}
	select {
	case c.out <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *rawConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

// next returns the first message the server writes that match accepts,
// skipping others; it fails the test with why if none comes.
func (c *rawConn) next(t *testing.T, why string, match func(jsonrpc.Message) bool) jsonrpc.Message {
	t.Helper()
	deadline := time.NewTimer(sdkWait)
	defer deadline.Stop()
	for {
		select {
		case m := <-c.out:
			if match(m) {
				return m
			}
		case <-deadline.C:
			t.Fatal(why)
			return nil
		}
	}
}

// response matches the response to call id.
func response(id int64) func(jsonrpc.Message) bool {
	return func(m jsonrpc.Message) bool {
		r, ok := m.(*jsonrpc.Response)
		return ok && r.ID == mustID(float64(id))
	}
}

// notification matches a notification of method.
func notification(method string) func(jsonrpc.Message) bool {
	return func(m jsonrpc.Message) bool {
		r, ok := m.(*jsonrpc.Request)
		return ok && !r.IsCall() && r.Method == method
	}
}

func mustID(v any) jsonrpc.ID {
	id, err := jsonrpc.MakeID(v)
	if err != nil {
		panic(err)
	}
	return id
}

// rawCall returns a client call or, with id 0, a notification.
func rawCall(id int64, method, params string) *jsonrpc.Request {
	r := &jsonrpc.Request{Method: method, Params: json.RawMessage(params)}
	if id != 0 {
		r.ID = mustID(float64(id))
	}
	return r
}

// legacyState is the state of a session initialized at version, as a
// legacy session's record holds it.
func legacyState(version string) *mcp.ServerSessionState {
	return &mcp.ServerSessionState{
		InitializeParams:          &mcp.InitializeParams{ProtocolVersion: version, Capabilities: &mcp.ClientCapabilities{}},
		InitializedParams:         &mcp.InitializedParams{},
		NegotiatedProtocolVersion: version,
		LogLevel:                  "info",
	}
}

// connectRaw connects a session with state to server through a new
// rawConn, closed when the test ends.
func connectRaw(t *testing.T, server *mcp.Server, state *mcp.ServerSessionState) (*rawConn, *mcp.ServerSession) {
	t.Helper()
	c := newRawConn()
	var opts *mcp.ServerSessionOptions
	if state != nil {
		opts = &mcp.ServerSessionOptions{State: state}
	}
	ss, err := server.Connect(context.Background(), c, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { ss.Close() })
	return c, ss
}

func sdkServer(opts *mcp.ServerOptions) *mcp.Server {
	return mcp.NewServer(&mcp.Implementation{Name: "gosdk-test", Version: "1"}, opts)
}

// TestGoSDKListChangedReachesConnectedLegacySessions pins down what the
// list-change tap (Handler.startTap) relies on: adding a tool sends
// notifications/tools/list_changed, a notification without ID, to every
// connected legacy-era session, one connected with a ready-made state
// included; a 2026-07-28 session gets it only through subscriptions/listen.
func TestGoSDKListChangedReachesConnectedLegacySessions(t *testing.T) {
	const revisit = "; revisit the list-change tap (Handler.startTap in notify.go), which relies on it"
	server := sdkServer(nil)
	// The 2026-07-28 session is connected first: the go-sdk notifies
	// sessions in the order they connected, so once the tap has its
	// notification, the other session would have had its own.
	modern, _ := connectRaw(t, server, legacyState(Version20260728))
	tap, _ := connectRaw(t, server, legacyState(Version20251125))
	mcp.AddTool(server, &mcp.Tool{Name: "added", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{}, nil, nil
		})
	tap.next(t, "go-sdk behaviour changed: adding a tool no longer sends notifications/tools/list_changed to a connected legacy-era session"+revisit,
		notification("notifications/tools/list_changed"))
	// The tap is a legacy-era session because a 2026-07-28 one is not
	// told without subscriptions/listen.
	select {
	case m := <-modern.out:
		t.Errorf("go-sdk behaviour changed: a 2026-07-28 session without subscriptions/listen was sent %v; the tap could then be of either era%s", m, revisit)
	default:
	}
}

// TestGoSDKResourceUpdatedGoesToEverySubscriber pins down what the owner
// tag in _meta (ownerMetaKey, Handler.filterOwnedNotifications) relies on:
// Server.ResourceUpdated cannot address one session or user, so it reaches
// the sending middleware of every subscribed session, legacy ones with one
// shared params value of type *ServerRequest[*ResourceUpdatedNotificationParams],
// 2026-07-28 listeners with a copy as *ServerRequest[Params]; a sending
// middleware that returns without calling next sends nothing.
func TestGoSDKResourceUpdatedGoesToEverySubscriber(t *testing.T) {
	const uri = "notes://alice/1"
	const revisit = "; revisit the owner tag in _meta (ownerMetaKey, filterOwnedNotifications in notify.go), which relies on it"
	type seen struct {
		session *mcp.ServerSession
		req     string // the request's dynamic type
		params  *mcp.ResourceUpdatedNotificationParams
	}
	var mu sync.Mutex
	var calls []seen
	var drop *mcp.ServerSession
	server := sdkServer(&mcp.ServerOptions{
		SubscribeHandler:   func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	// A resource, so that the server has the resources capability, which
	// subscriptions/listen needs.
	server.AddResource(&mcp.Resource{URI: uri, Name: "note"},
		func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{}, nil
		})
	server.AddSendingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method != "notifications/resources/updated" {
				return next(ctx, method, req)
			}
			p, _ := req.GetParams().(*mcp.ResourceUpdatedNotificationParams)
			ss, _ := req.GetSession().(*mcp.ServerSession)
			mu.Lock()
			calls = append(calls, seen{session: ss, req: fmt.Sprintf("%T", req), params: p})
			dropped := ss == drop
			mu.Unlock()
			if dropped {
				return nil, nil
			}
			return next(ctx, method, req)
		}
	})
	kept, keptSS := connectRaw(t, server, legacyState(Version20251125))
	dropped, droppedSS := connectRaw(t, server, legacyState(Version20251125))
	listener, listenerSS := connectRaw(t, server, legacyState(Version20260728))
	mu.Lock()
	drop = droppedSS
	mu.Unlock()
	for _, c := range []*rawConn{kept, dropped} {
		c.in <- rawCall(1, "resources/subscribe", `{"uri":"`+uri+`"}`)
		c.next(t, "resources/subscribe: no response", response(1))
	}
	listener.in <- rawCall(1, "subscriptions/listen", `{"_meta":{"io.modelcontextprotocol/protocolVersion":"`+Version20260728+
		`","io.modelcontextprotocol/clientCapabilities":{}},"notifications":{"resourceSubscriptions":["`+uri+`"]}}`)
	listener.next(t, "subscriptions/listen: no acknowledgement", notification("notifications/subscriptions/acknowledged"))

	tagged := &mcp.ResourceUpdatedNotificationParams{URI: uri, Meta: mcp.Meta{ownerMetaKey: "alice"}}
	if err := server.ResourceUpdated(context.Background(), tagged); err != nil {
		t.Fatalf("ResourceUpdated: %v", err)
	}
	kept.next(t, "go-sdk behaviour changed: a subscribed legacy session was not sent notifications/resources/updated"+revisit,
		notification("notifications/resources/updated"))
	listener.next(t, "go-sdk behaviour changed: a 2026-07-28 subscriptions/listen stream was not sent notifications/resources/updated"+revisit,
		notification("notifications/resources/updated"))

	mu.Lock()
	defer mu.Unlock()
	byType := map[*mcp.ServerSession]seen{}
	for _, c := range calls {
		byType[c.session] = c
	}
	const legacyType = "*mcp.ServerRequest[*github.com/modelcontextprotocol/go-sdk/mcp.ResourceUpdatedNotificationParams]"
	const modernType = "*mcp.ServerRequest[github.com/modelcontextprotocol/go-sdk/mcp.Params]"
	for _, tt := range []struct {
		name   string
		ss     *mcp.ServerSession
		typ    string
		shared bool // the very params passed to ResourceUpdated
	}{
		{"kept legacy session", keptSS, legacyType, true},
		{"dropped legacy session", droppedSS, legacyType, true},
		{"2026-07-28 listener", listenerSS, modernType, false},
	} {
		got, ok := byType[tt.ss]
		switch {
		case !ok:
			t.Errorf("%s: go-sdk behaviour changed: the sending middleware never saw the resource update (it may now target sessions itself)%s", tt.name, revisit)
			continue
		case got.req != tt.typ:
			t.Errorf("%s: go-sdk behaviour changed: the sending middleware got a %s, want %s: filterOwnedNotifications drops shapes it does not know%s", tt.name, got.req, tt.typ, revisit)
		case got.params == nil || got.params.Meta[ownerMetaKey] != "alice":
			t.Errorf("%s: go-sdk behaviour changed: the owner tag in _meta did not reach the sending middleware%s", tt.name, revisit)
		case tt.shared && got.params != tagged:
			t.Errorf("%s: go-sdk behaviour changed: legacy sessions no longer share the caller's params (stripping the tag in place would now be safe)%s", tt.name, revisit)
		}
	}
	// ResourceUpdated writes before it returns: nothing more is coming.
	select {
	case m := <-dropped.out:
		t.Errorf("go-sdk behaviour changed: a sending middleware that returns without calling next no longer drops the notification (sent %v)%s", m, revisit)
	default:
	}
}

// TestGoSDKRebuildsSessionsFromState pins down what the legacy session
// layer (serveCalls in legacy.go, Session.State) relies on to rebuild a
// session for every request: a ServerSessionState survives a JSON round
// trip; a session connected with it serves calls without an initialize
// handshake, with or without InitializedParams (which the go-sdk means to
// require before server-to-client requests); and every rebuilt
// session numbers its server-to-client requests from the same start.
func TestGoSDKRebuildsSessionsFromState(t *testing.T) {
	const revisit = "; revisit how legacy sessions are rebuilt per request (serveCalls in legacy.go, conn.call in conn.go)"
	server := sdkServer(nil)
	data, err := json.Marshal(legacyState(Version20251125))
	if err != nil {
		t.Fatal(err)
	}
	var stored mcp.ServerSessionState
	if err := json.Unmarshal(data, &stored); err != nil {
		t.Fatalf("go-sdk behaviour changed: a ServerSessionState no longer survives a JSON round trip (%v)%s", err, revisit)
	}
	if stored.InitializeParams == nil || stored.InitializeParams.ProtocolVersion != Version20251125 || stored.InitializedParams == nil || stored.LogLevel != "info" {
		t.Errorf("go-sdk behaviour changed: a ServerSessionState lost fields in a JSON round trip: %s%s", data, revisit)
	}

	t.Run("initialized", func(t *testing.T) {
		c, _ := connectRaw(t, server, &stored)
		c.in <- rawCall(1, "tools/list", `{}`)
		resp := c.next(t, "tools/list: no response", response(1)).(*jsonrpc.Response)
		if resp.Error != nil {
			t.Errorf("go-sdk behaviour changed: a session connected with an initialized state refused tools/list: %v%s", resp.Error, revisit)
		}
	})
	t.Run("initialize params only", func(t *testing.T) {
		state := stored
		state.InitializedParams = nil
		state.InitializeParams = &mcp.InitializeParams{ProtocolVersion: Version20251125,
			Capabilities: &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{Form: &mcp.FormElicitationCapabilities{}}}}
		c, ss := connectRaw(t, server, &state)
		c.in <- rawCall(1, "tools/list", `{}`)
		resp := c.next(t, "tools/list: no response", response(1)).(*jsonrpc.Response)
		if resp.Error != nil {
			t.Errorf("go-sdk behaviour changed: a session with InitializeParams but without InitializedParams refused tools/list: %v%s", resp.Error, revisit)
		}
		// The go-sdk means to refuse server-to-client requests before
		// notifications/initialized (a TODO in its checkInitialized), which
		// some clients never send: serveCalls fills InitializedParams in.
		errs := make(chan error, 1)
		go func() {
			_, err := ss.Elicit(context.Background(), &mcp.ElicitParams{Message: "name?", RequestedSchema: map[string]any{"type": "object"}})
			errs <- err
		}()
		select {
		case m := <-c.out:
			if r, ok := m.(*jsonrpc.Request); ok && r.IsCall() {
				c.in <- &jsonrpc.Response{ID: r.ID, Result: json.RawMessage(`{"action":"decline"}`)}
			}
			<-errs
		case err := <-errs:
			t.Errorf("go-sdk behaviour changed: a session without InitializedParams no longer sends server-to-client requests (%v): serveCalls's filling in of InitializedParams now keeps elicitation working for clients that skip notifications/initialized; keep it%s", err, revisit)
		case <-time.After(sdkWait):
			t.Fatal("Elicit neither sent a request nor failed")
		}
	})
	t.Run("server-to-client request IDs", func(t *testing.T) {
		var first []jsonrpc.ID
		for range 2 {
			c, ss := connectRaw(t, server, &stored)
			pinged := make(chan error, 1)
			go func() { pinged <- ss.Ping(context.Background(), nil) }()
			req := c.next(t, "server ping: no request", func(m jsonrpc.Message) bool {
				r, ok := m.(*jsonrpc.Request)
				return ok && r.IsCall() && r.Method == "ping"
			}).(*jsonrpc.Request)
			first = append(first, req.ID)
			c.in <- &jsonrpc.Response{ID: req.ID, Result: json.RawMessage(`{}`)}
			if err := <-pinged; err != nil {
				t.Fatalf("server ping: %v", err)
			}
		}
		if first[0] != first[1] {
			t.Errorf("go-sdk behaviour changed: two sessions' first server-to-client requests have IDs %v and %v: conn.call need no longer rewrite them to be unique in the session%s", first[0].Raw(), first[1].Raw(), revisit)
		}
	})
}

// TestGoSDKAnswersCancelledCalls pins down what conn.forwardCancel relies
// on: the go-sdk cancels a call's handler on notifications/cancelled, and
// still writes a response for it, which a cancelled request must not get
// (https://github.com/modelcontextprotocol/go-sdk/issues/1235); the conn
// forgets the call first, to drop it.
func TestGoSDKAnswersCancelledCalls(t *testing.T) {
	const revisit = "; revisit conn.forwardCancel in conn.go, which drops that answer"
	started := make(chan struct{})
	server := sdkServer(nil)
	mcp.AddTool(server, &mcp.Tool{Name: "block", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ map[string]any) (*mcp.CallToolResult, any, error) {
			close(started)
			<-ctx.Done()
			return nil, nil, ctx.Err()
		})
	c, _ := connectRaw(t, server, legacyState(Version20251125))
	c.in <- rawCall(7, "tools/call", `{"name":"block","arguments":{}}`)
	select {
	case <-started:
	case <-time.After(sdkWait):
		t.Fatal("the tool never ran")
	}
	c.in <- rawCall(0, "notifications/cancelled", `{"requestId":7}`)
	// The wait for the answer ends at sdkWait only if the go-sdk changed.
	c.next(t, "go-sdk behaviour changed: a cancelled call is no longer answered (https://github.com/modelcontextprotocol/go-sdk/issues/1235 fixed?)"+revisit, response(7))
}

// TestGoSDKWriteErrorCancelsCalls pins down why conn.Write swallows the
// error of a notification the event log refused: an error from
// Connection.Write makes the go-sdk cancel every call in flight on the
// connection.
func TestGoSDKWriteErrorCancelsCalls(t *testing.T) {
	const revisit = "; revisit conn.Write in conn.go, which returns nil for a notification it failed to log"
	errRefused := errors.New("refused")
	cancelled := make(chan error, 1)
	server := sdkServer(nil)
	mcp.AddTool(server, &mcp.Tool{Name: "notify", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, req *mcp.CallToolRequest, _ map[string]any) (*mcp.CallToolResult, any, error) {
			// The notification's write fails; the call's context tells
			// whether the go-sdk gave the call up for it.
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: "p", Progress: 1})
			select {
			case <-ctx.Done():
				cancelled <- context.Cause(ctx)
			case <-time.After(sdkWait):
				cancelled <- nil
			}
			return &mcp.CallToolResult{}, nil, nil
		})
	c := newRawConn()
	c.writeErr = func(m jsonrpc.Message) error {
		if r, ok := m.(*jsonrpc.Request); ok && r.Method == "notifications/progress" {
			return errRefused
		}
		return nil
	}
	ss, err := server.Connect(context.Background(), c, &mcp.ServerSessionOptions{State: legacyState(Version20251125)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	c.in <- rawCall(1, "tools/call", `{"name":"notify","arguments":{}}`)
	if err := <-cancelled; err == nil {
		t.Errorf("go-sdk behaviour changed: a failed Connection.Write no longer cancels the calls in flight%s", revisit)
	}
}

// TestGoSDKStreamsEveryStatelessAnswer pins down why the Handler keeps two
// stateless handlers (modern and modernJSON): the go-sdk answers in JSON or
// in SSE as its options say (StreamableHTTPOptions.JSONResponse), never
// choosing per request, so a call that can send nothing before its result
// is still answered with an SSE stream unless the handler is set to JSON.
func TestGoSDKStreamsEveryStatelessAnswer(t *testing.T) {
	const revisit = "; revisit Handler.modernJSON and answersInJSON in handler.go, which choose per request"
	server := sdkServer(nil)
	for _, tt := range []struct {
		json bool
		want string
	}{
		{false, "text/event-stream"},
		{true, "application/json"},
	} {
		h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
			&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: tt.json})
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"` +
			Version20260728 + `","io.modelcontextprotocol/clientCapabilities":{}}}}`
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", Version20260728)
		req.Header.Set("Mcp-Method", "tools/list")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("JSONResponse %v: status %d: %s", tt.json, rec.Code, rec.Body)
		}
		if got, _, _ := strings.Cut(rec.Header().Get("Content-Type"), ";"); got != tt.want {
			t.Errorf("go-sdk behaviour changed: with JSONResponse %v, a stateless tools/list is answered as %q, want %q%s", tt.json, got, tt.want, revisit)
		}
	}
}
