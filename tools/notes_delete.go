package tools

import (
	"context"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// DeleteInput is the input of notes_delete.
type DeleteInput struct {
	ID      string `json:"id" jsonschema:"the id of the note to delete"`
	Confirm bool   `json:"confirm,omitempty" jsonschema:"only for clients that cannot show a confirmation prompt: set to true after the user has explicitly agreed to delete this note"`
}

// DeleteOutput is the result of notes_delete.
type DeleteOutput struct {
	Deleted bool   `json:"deleted"`
	ID      string `json:"id"`
	Title   string `json:"title"`
}

// confirmKey names the MRTR input request that asks for confirmation.
const confirmKey = "confirm_delete"

func (t *toolset) addNotesDelete(r *policy.Registry) {
	policy.AddTool(r, &mcp.Tool{
		Name:  "notes_delete",
		Title: "Delete note",
		Description: "Delete one of the current user's notes. This cannot be undone, so the user is asked to confirm first " +
			"(through the client's confirmation prompt when it has one).",
		Annotations: &mcp.ToolAnnotations{Title: "Delete note", DestructiveHint: &yes, IdempotentHint: true, OpenWorldHint: &no},
	}, t.delete, policy.Need(t.Scopes.Write))
}

// delete asks the user to confirm in the way the client supports: an MRTR
// input request on 2026-07-28, an elicitation/create request on a legacy
// session whose client declared elicitation, and otherwise a tool error that
// explains how to proceed.
func (t *toolset) delete(ctx context.Context, req *mcp.CallToolRequest, in DeleteInput) (*mcp.CallToolResult, DeleteOutput, error) {
	n, err := t.load(ctx, req, in.ID)
	if err != nil {
		return nil, DeleteOutput{}, err
	}
	caps := req.ClientCapabilities()
	canElicit := caps != nil && caps.Elicitation != nil
	owner := notes.Owner(ctx, req.Extra)
	switch {
	case isModern(req) && canElicit:
		confirmed, ask, err := t.confirmMRTR(req, owner, n)
		if err != nil || ask != nil {
			return ask, DeleteOutput{}, err
		}
		if !confirmed {
			return declined(n)
		}
	case canElicit:
		res, err := req.Session.Elicit(ctx, confirmParams(n))
		if err != nil {
			return nil, DeleteOutput{}, fmt.Errorf("could not ask for confirmation: %w", err)
		}
		if !accepted(res) {
			return declined(n)
		}
	case !in.Confirm:
		return nil, DeleteOutput{}, fmt.Errorf("deleting %q cannot be undone and needs the user's confirmation, "+
			"but this client cannot show a confirmation prompt (it did not declare the elicitation capability). "+
			"Ask the user whether to delete the note %q; if they agree, call notes_delete again with \"confirm\": true", n.ID, n.Title)
	}
	if err := t.Notes.Delete(ctx, owner, n.ID); err != nil && !errors.Is(err, notes.ErrNotFound) {
		return nil, DeleteOutput{}, err
	}
	t.Notifier.ResourceUpdated(ctx, owner, n.URI())
	t.Notifier.ResourceUpdated(ctx, owner, notes.IndexURI)
	return nil, DeleteOutput{Deleted: true, ID: n.ID, Title: n.Title}, nil
}

// confirmMRTR runs the 2026-07-28 multi-round-trip confirmation. The first
// round returns an input_required result whose requestState, sealed to the
// caller and bound to the note, must come back with the answer.
func (t *toolset) confirmMRTR(req *mcp.CallToolRequest, owner string, n *notes.Note) (confirmed bool, ask *mcp.CallToolResult, err error) {
	p := req.Params
	if p.RequestState == "" {
		return false, &mcp.CallToolResult{
			InputRequests: mcp.InputRequestMap{confirmKey: confirmParams(n)},
			RequestState:  t.Sealer.Seal(owner, "notes_delete", []byte(n.ID)),
		}, nil
	}
	bound, err := t.Sealer.Open(owner, "notes_delete", p.RequestState)
	if err != nil || string(bound) != n.ID {
		return false, nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid requestState"}
	}
	res, ok := p.InputResponses[confirmKey].(*mcp.ElicitResult)
	if !ok {
		// The answer is missing: ask again (SEP-2322).
		return false, &mcp.CallToolResult{
			InputRequests: mcp.InputRequestMap{confirmKey: confirmParams(n)},
			RequestState:  p.RequestState,
		}, nil
	}
	return accepted(res), nil, nil
}

func confirmParams(n *notes.Note) *mcp.ElicitParams {
	return &mcp.ElicitParams{
		Message: fmt.Sprintf("Delete the note %q? This cannot be undone.", n.Title),
		RequestedSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"confirm": map[string]any{"type": "boolean", "title": "Delete this note", "default": false},
			},
			"required": []string{"confirm"},
		},
	}
}

func accepted(res *mcp.ElicitResult) bool {
	if res == nil || res.Action != "accept" {
		return false
	}
	v, _ := res.Content["confirm"].(bool)
	return v
}

func declined(n *notes.Note) (*mcp.CallToolResult, DeleteOutput, error) {
	return &mcp.CallToolResult{
		Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("Kept the note %q: deletion was not confirmed.", n.Title)}},
	}, DeleteOutput{Deleted: false, ID: n.ID, Title: n.Title}, nil
}
