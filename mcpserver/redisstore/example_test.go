package redisstore_test

import (
	"log"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/mcpserver"
	"github.com/remotemcp/remotemcp/mcpserver/redisstore"
)

// Every replica builds its Handler on stores in the same Redis, under the
// same key prefix.
func ExampleNew() {
	opt, err := redis.ParseURL("redis://localhost:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true // request deadlines bound Redis calls
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	stores, stop := redisstore.New(rdb, &redisstore.Options{SessionTTL: time.Hour})
	defer stop()

	server := mcp.NewServer(&mcp.Implementation{Name: "example", Version: "1.0.0"},
		&mcp.ServerOptions{SupportedProtocolVersions: mcpserver.SupportedVersions})
	h := mcpserver.NewHandler(server, stores, nil)
	defer h.Close()
	http.Handle("/mcp", h)
}
