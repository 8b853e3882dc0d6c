// Command teamserver is an MCP server of its own put on the network with
// the remotemcp library: a team notice board that anyone signed in with
// team:read may read and only callers granted team:write may post to.
//
//	go run ./examples/teamserver                       # sign in with the development provider
//	go run ./examples/teamserver -auth jwt -issuer https://login.example.com/realms/team
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp"
	"github.com/remotemcp/remotemcp/policy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "loopback address to listen on")
	authMode := flag.String("auth", "proxy", "proxy (sign in with the development provider), jwt (tokens of -issuer) or none")
	issuer := flag.String("issuer", "", "with -auth jwt: the issuer of the access tokens")
	redisURL := flag.String("redis-url", "", "keep the server's state in Redis, with -auth jwt or none (default: in process)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	server := mcp.NewServer(&mcp.Implementation{Name: "teamserver", Version: "1.0.0"}, nil)
	reg := policy.New(server, &policy.Options{Implies: map[string][]string{"team:write": {"team:read"}}})
	policy.AddTool(reg, &mcp.Tool{Name: "board_read", Description: "Read the team's notice board."}, readBoard, policy.Need("team:read"))
	policy.AddTool(reg, &mcp.Tool{Name: "board_post", Description: "Post a message on the team's notice board."}, post, policy.Need("team:write"))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := remotemcp.New(ctx, reg, &remotemcp.Options{
		PublicURL:      "http://" + ln.Addr().String(),
		Auth:           remotemcp.Auth(*authMode),
		Scopes:         []remotemcp.Scope{{Name: "team:read", Description: "Read the notice board"}, {Name: "team:write", Description: "Post on the notice board"}},
		RequiredScopes: []string{"team:read"},
		Tokens:         remotemcp.TokenOptions{Issuer: *issuer},
		RedisURL:       *redisURL,
		Dev:            true, // loopback only: the development provider, loopback browser origins
		Logger:         slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	log.Printf("serving http://%s/mcp", ln.Addr())
	if err := srv.Serve(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

// The board: one in-process list (with -redis-url, each replica has its
// own; a real server would keep it in srv.Redis()).
var (
	mu    sync.Mutex
	board []string
)

// Board is what both tools answer: the messages, oldest first.
type Board struct {
	Messages []string `json:"messages"`
}

func readBoard(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, Board, error) {
	mu.Lock()
	defer mu.Unlock()
	return nil, Board{Messages: slices.Clone(board)}, nil
}

// Post is what board_post takes.
type Post struct {
	Message string `json:"message" jsonschema:"what to post"`
}

func post(ctx context.Context, req *mcp.CallToolRequest, in Post) (*mcp.CallToolResult, Board, error) {
	mu.Lock()
	defer mu.Unlock()
	who := "anonymous" // -auth none
	if req.Extra.TokenInfo != nil {
		who = req.Extra.TokenInfo.UserID
	}
	board = append(board, who+": "+in.Message)
	return nil, Board{Messages: slices.Clone(board)}, nil
}
