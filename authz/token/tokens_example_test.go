package token_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/remotemcp/remotemcp/authz/token"
)

func ExampleIssuer() {
	key, err := token.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	ring, err := token.NewKeyRing(key)
	if err != nil {
		log.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	issuer, err := token.NewIssuer(ring, &token.IssuerOptions{
		Issuer:   "https://mcp.example.com",     // our public base URL
		Audience: "https://mcp.example.com/mcp", // the MCP endpoint
		Now:      func() time.Time { return now },
	})
	if err != nil {
		log.Fatal(err)
	}

	token, _, exp, err := issuer.MintAccessToken("alice", "client-1", []string{"notes:read", "notes:write"}, "grant-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("expires:", exp)

	// issuer.Verify is an authz.Verifier, for authz.RequireBearer.
	info, err := issuer.Verify(context.Background(), token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("user:", info.UserID)
	fmt.Println("scopes:", info.Scopes)
	fmt.Println("client:", info.Extra["client_id"], "grant:", info.Extra["gid"])

	now = now.Add(11 * time.Minute)
	_, err = issuer.Verify(context.Background(), token)
	fmt.Println(err)
	// Output:
	// expires: 2026-03-01 12:10:00 +0000 UTC
	// user: alice
	// scopes: [notes:read notes:write]
	// client: client-1 grant: grant-1
	// invalid token: the token has expired
}
