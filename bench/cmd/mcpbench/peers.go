package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The tool every configuration calls: remotemcp's conformance fixture
// test_simple_text (--fixtures conformance), which takes no arguments and
// returns one fixed text content. The peers register the same tool with the
// same answer, so that (a), (b) and (c) do the same work.
const (
	toolName = "test_simple_text"
	toolText = "This is a simple text response for testing."
)

// peerCommand is `mcpbench peer --kind echo|sdk --listen ADDR --debug ADDR`:
// one of the two peers, run as its own process like remotemcp.
func peerCommand(args []string) error {
	fs := flag.NewFlagSet("mcpbench peer", flag.ContinueOnError)
	kind := fs.String("kind", "", "echo: a minimal net/http JSON-RPC handler (the ceiling); sdk: go-sdk's StreamableHTTPHandler, Stateless and JSONResponse (the peer)")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	debug := fs.String("debug", "", "address of the pprof listener")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var h http.Handler
	switch *kind {
	case "echo":
		h = http.HandlerFunc(echoHandler)
	case "sdk":
		h = sdkHandler()
	default:
		return fmt.Errorf("peer --kind %q: want echo or sdk", *kind)
	}
	if *debug != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		dl, err := net.Listen("tcp", *debug)
		if err != nil {
			return err
		}
		go http.Serve(dl, mux)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// sdkHandler is what most users of the go-sdk would deploy: the stateless
// streamable handler with JSON responses, a default server and the tool.
func sdkHandler() http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "peer", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: toolName, Description: "Tests simple text content response"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: toolText}}}, nil, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
}

// echoHandler is the ceiling: decode a JSON-RPC request, check it is a
// tools/call of the tool, answer the same result remotemcp does.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  string          `json:"method"`
		Params  struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20)).Decode(&req); err != nil || req.JSONRPC != "2.0" {
		http.Error(w, "bad JSON-RPC request", http.StatusBadRequest)
		return
	}
	type content struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type result struct {
		Content    []content `json:"content"`
		ResultType string    `json:"resultType"`
	}
	type response struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  *result         `json:"result,omitempty"`
		Error   any             `json:"error,omitempty"`
	}
	resp := response{JSONRPC: "2.0", ID: req.ID}
	if req.Method == "tools/call" && req.Params.Name == toolName {
		resp.Result = &result{Content: []content{{Type: "text", Text: toolText}}, ResultType: "complete"}
	} else {
		resp.Error = map[string]any{"code": -32601, "message": "unknown method or tool"}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}
