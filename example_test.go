package remotemcp_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp"
	"github.com/remotemcp/remotemcp/authz/token"
	"github.com/remotemcp/remotemcp/authz/upstream"
	"github.com/remotemcp/remotemcp/policy"
)

type greeting struct {
	Text string `json:"text"`
}

func greet(ctx context.Context, req *mcp.CallToolRequest, in struct {
	Name string `json:"name"`
}) (*mcp.CallToolResult, greeting, error) {
	return nil, greeting{Text: "hello, " + in.Name}, nil
}

// A server of its own, with one tool, served on loopback without
// authentication (Dev) and called by the go-sdk client.
func Example() {
	ctx := context.Background()
	server := mcp.NewServer(&mcp.Implementation{Name: "greeter", Version: "1.0.0"}, nil)
	reg := policy.New(server, nil)
	policy.AddTool(reg, &mcp.Tool{Name: "greet", Description: "Greet someone."}, greet, policy.Open)

	ts := httptest.NewUnstartedServer(nil)
	srv, err := remotemcp.New(ctx, reg, &remotemcp.Options{PublicURL: "http://" + ts.Listener.Addr().String(), Dev: true})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ts.Config.Handler = srv
	ts.Start()
	defer ts.Close()

	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "world"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StructuredContent.(map[string]any)["text"])
	// Output: hello, world
}

// An item added to the *mcp.Server directly, rather than through the
// policy.Registry with what it needs, would never be served: New refuses
// to start with it.
func ExampleNew_denyByDefault() {
	server := mcp.NewServer(&mcp.Implementation{Name: "greeter", Version: "1.0.0"}, nil)
	reg := policy.New(server, nil)
	policy.AddTool(reg, &mcp.Tool{Name: "greet"}, greet, policy.Need("greet"))
	mcp.AddTool(server, &mcp.Tool{Name: "shout"}, greet) // no rule

	_, err := remotemcp.New(context.Background(), reg, &remotemcp.Options{PublicURL: "http://127.0.0.1:8080", Dev: true})
	fmt.Println(err != nil && strings.Contains(err.Error(), `"shout"`))
	// Output: true
}

// The server as its own authorization server: users sign in with GitHub,
// clients register themselves, and the tokens and sessions live in Redis so
// that every replica serves every request. Replicas share their keys: the
// token signing keys (made with `remotemcp signing-key`), the keys that
// encrypt the upstream tokens, and the cookie key.
func ExampleNew_authorizationServer() {
	server := mcp.NewServer(&mcp.Implementation{Name: "team", Version: "1.0.0"}, nil)
	reg := policy.New(server, &policy.Options{Implies: map[string][]string{"team:write": {"team:read"}}})
	policy.AddTool(reg, &mcp.Tool{Name: "greet"}, greet, policy.Need("team:read"))

	ring, err := os.ReadFile("/etc/team/signing-keys.json")
	if err != nil {
		log.Fatal(err)
	}
	signing, err := token.UnmarshalKeyRing(ring)
	if err != nil {
		log.Fatal(err)
	}
	vault, err := upstream.ParseEncryptionKeys(os.Getenv("VAULT_KEYS")) // id:hex64[,id:hex64…]
	if err != nil {
		log.Fatal(err)
	}
	cookie, err := hex.DecodeString(os.Getenv("COOKIE_KEY")) // 32 bytes or more
	if err != nil {
		log.Fatal(err)
	}
	srv, err := remotemcp.New(context.Background(), reg, &remotemcp.Options{
		PublicURL:      "https://mcp.example.com",
		Auth:           remotemcp.AuthProxy,
		Scopes:         []remotemcp.Scope{{Name: "team:read", Description: "Read the team's board"}, {Name: "team:write", Description: "Post on it"}},
		RequiredScopes: []string{"team:read"},
		Proxy: remotemcp.ProxyOptions{
			Upstream:     "github",
			ClientID:     os.Getenv("GITHUB_CLIENT_ID"),     // the OAuth app registered at GitHub, with the
			ClientSecret: os.Getenv("GITHUB_CLIENT_SECRET"), // redirect URI https://mcp.example.com/callback
			SigningKeys:  signing,
			VaultKeys:    vault,
			CookieKey:    cookie,
		},
		RedisURL: "redis://redis.internal:6379",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	log.Fatal(srv.ListenAndServe(context.Background(), ":8080"))
}

// Serve runs until its context ends, then drains: /readyz answers 503 from
// the start of the drain, so that load balancers stop sending requests.
func ExampleServer_Serve() {
	server := mcp.NewServer(&mcp.Implementation{Name: "greeter", Version: "1.0.0"}, nil)
	reg := policy.New(server, nil)
	policy.AddTool(reg, &mcp.Tool{Name: "greet"}, greet, policy.Open)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := remotemcp.New(context.Background(), reg, &remotemcp.Options{PublicURL: "http://" + ln.Addr().String(), Dev: true})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%d %s", resp.StatusCode, body)

	stop() // SIGTERM, in a program: signal.NotifyContext
	fmt.Println("drained:", <-served == nil, "ready:", srv.Ready())
	// Output:
	// 200 ready
	// drained: true ready: false
}
