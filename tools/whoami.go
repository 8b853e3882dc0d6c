package tools

import (
	"context"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// WhoAmI describes the caller as the server sees it.
type WhoAmI struct {
	Subject       string   `json:"subject" jsonschema:"the user the token was issued for; anonymous when the server runs without authentication"`
	Authenticated bool     `json:"authenticated" jsonschema:"whether the request carried a verified access token"`
	ClientID      string   `json:"clientId,omitempty" jsonschema:"the OAuth client the token was issued to"`
	Scopes        []string `json:"scopes" jsonschema:"the scopes the token grants"`
	ExpiresAt     string   `json:"expiresAt,omitempty" jsonschema:"when the token expires (RFC 3339)"`
	// Upstream is filled when the server signs users in through an
	// upstream identity provider: who you are there, asked live with the
	// token the server keeps for you (never shown).
	Upstream      *UpstreamIdentity `json:"upstream,omitempty" jsonschema:"who you are at the identity provider you signed in with, fetched live"`
	UpstreamError string            `json:"upstreamError,omitempty" jsonschema:"why the identity provider could not be asked, if it could not"`
}

// UpstreamIdentity is the caller's identity at the upstream identity
// provider.
type UpstreamIdentity struct {
	Provider string `json:"provider" jsonschema:"the identity provider: dev, oidc, github or google"`
	Subject  string `json:"subject" jsonschema:"your user id there"`
	Login    string `json:"login,omitempty" jsonschema:"your user name there"`
	Name     string `json:"name,omitempty"`
	Email    string `json:"email,omitempty"`
}

// Upstream reaches the upstream identity provider on the caller's behalf,
// with the upstream token the server keeps for the caller's grant. The
// token itself never reaches a tool.
type Upstream interface {
	Identity(ctx context.Context, info *auth.TokenInfo) (*UpstreamIdentity, error)
}

// addWhoAmI adds whoami, which any signed-in caller may use: it shows
// only what the caller's own token says.
func addWhoAmI(r *policy.Registry, up Upstream) {
	policy.AddTool(r, &mcp.Tool{
		Name:        "whoami",
		Title:       "Who am I",
		Description: "Show who you are to this server: your subject, the client you connected with, your scopes and when your access expires.",
		Annotations: &mcp.ToolAnnotations{Title: "Who am I", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, WhoAmI, error) {
		return whoami(ctx, req, up)
	}, policy.Open)
}

func whoami(ctx context.Context, req *mcp.CallToolRequest, up Upstream) (*mcp.CallToolResult, WhoAmI, error) {
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
		if up != nil {
			id, err := up.Identity(ctx, ti)
			if err != nil {
				out.UpstreamError = err.Error()
			} else {
				out.Upstream = id
			}
		}
	}
	return nil, out, nil
}
