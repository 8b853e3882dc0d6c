package tools

import (
	"context"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// WhoAmI describes the caller as the server sees it.
type WhoAmI struct {
	Subject       string   `json:"subject" jsonschema:"the user the token was issued for; anonymous when the server runs without authentication"`
	Authenticated bool     `json:"authenticated" jsonschema:"whether the request carried a verified access token"`
	ClientID      string   `json:"clientId,omitempty" jsonschema:"the OAuth client the token was issued to"`
	Scopes        []string `json:"scopes" jsonschema:"the scopes the token grants"`
	ExpiresAt     string   `json:"expiresAt,omitempty" jsonschema:"when the token expires (RFC 3339)"`
}

func addWhoAmI(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{
		Name:        "whoami",
		Title:       "Who am I",
		Description: "Show who you are to this server: your subject, the client you connected with, your scopes and when your access expires.",
		Annotations: &mcp.ToolAnnotations{Title: "Who am I", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, whoami)
}

func whoami(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, WhoAmI, error) {
	out := WhoAmI{Subject: notes.Owner(ctx, req.Extra), Scopes: []string{}}
	if ti := req.Extra.TokenInfo; ti != nil {
		out.Authenticated = true
		out.Scopes = slices.Clone(ti.Scopes)
		if out.Scopes == nil {
			out.Scopes = []string{}
		}
		if cid, ok := ti.Extra["client_id"].(string); ok {
			out.ClientID = cid
		}
		if !ti.Expiration.IsZero() {
			out.ExpiresAt = ti.Expiration.UTC().Format(time.RFC3339)
		}
	}
	return nil, out, nil
}
