package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// ExportInput is the input of export_notes.
type ExportInput struct {
	Format string `json:"format,omitempty" jsonschema:"markdown (default) or json"`
	Tag    string `json:"tag,omitempty" jsonschema:"only export notes with this tag"`
}

// ExportOutput is the result of export_notes.
type ExportOutput struct {
	URI      string `json:"uri" jsonschema:"the export's resource URI; read it with resources/read within an hour"`
	Count    int    `json:"count"`
	MIMEType string `json:"mimeType"`
}

func (t *toolset) addExportNotes(r *policy.Registry) {
	policy.AddTool(r, &mcp.Tool{
		Name:  "export_notes",
		Title: "Export notes",
		Description: "Export the current user's notes as one Markdown or JSON document. Long-running: reports progress " +
			"and can be cancelled. Returns a link to the export resource.",
		Annotations: &mcp.ToolAnnotations{Title: "Export notes", ReadOnlyHint: true, OpenWorldHint: &no},
	}, t.export, policy.Need(t.Scopes.Read))
}

func (t *toolset) export(ctx context.Context, req *mcp.CallToolRequest, in ExportInput) (*mcp.CallToolResult, ExportOutput, error) {
	format := strings.ToLower(strings.TrimSpace(in.Format))
	if format == "" {
		format = "markdown"
	}
	if format != "markdown" && format != "json" {
		return nil, ExportOutput{}, fmt.Errorf("format must be markdown or json, not %q", in.Format)
	}
	owner := notes.Owner(ctx, req.Extra)
	all, err := t.Notes.List(ctx, owner)
	if err != nil {
		return nil, ExportOutput{}, err
	}
	selected := Match(all, "", in.Tag)
	token := req.Params.GetProgressToken()
	var md strings.Builder
	md.WriteString("# Notes export\n")
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, n := range selected {
		// Cancellation: notifications/cancelled (legacy) or a closed stream
		// (2026-07-28) cancels ctx; stop without producing an export.
		select {
		case <-ctx.Done():
			return nil, ExportOutput{}, ctx.Err()
		case <-timer.C:
			timer.Reset(t.ExportPace)
		}
		fmt.Fprintf(&md, "\n## %s\n\n%s\n", n.Title, n.Body)
		if len(n.Tags) > 0 {
			fmt.Fprintf(&md, "\nTags: %s\n", strings.Join(n.Tags, ", "))
		}
		if token != nil {
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token,
				Progress:      float64(i + 1),
				Total:         float64(len(selected)),
				Message:       fmt.Sprintf("exported %d of %d notes", i+1, len(selected)),
			})
		}
	}
	e := &notes.Export{ID: newID(), Owner: owner, Count: len(selected), CreatedAt: t.Now().UTC()}
	if format == "json" {
		data, err := json.MarshalIndent(selected, "", "  ")
		if err != nil {
			return nil, ExportOutput{}, err
		}
		e.MIMEType, e.Content = "application/json", string(data)
	} else {
		e.MIMEType, e.Content = "text/markdown", md.String()
	}
	if err := t.Exports.PutExport(ctx, e); err != nil {
		if errors.Is(err, notes.ErrFull) {
			return nil, ExportOutput{}, errors.New("cannot store the export: the server's storage is full; export fewer notes (by tag), or try again later")
		}
		return nil, ExportOutput{}, err
	}
	size := int64(len(e.Content))
	return &mcp.CallToolResult{
			Content: []mcp.Content{
				&mcp.TextContent{Text: fmt.Sprintf("Exported %d notes to %s.", e.Count, e.URI())},
				&mcp.ResourceLink{URI: e.URI(), Name: "notes-export-" + e.ID, Title: "Notes export", MIMEType: e.MIMEType, Size: &size},
			},
		}, ExportOutput{
			URI: e.URI(), Count: e.Count, MIMEType: e.MIMEType,
		}, nil
}
