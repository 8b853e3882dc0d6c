// Package resources exposes the caller's notes as MCP resources: the index
// notes://index, each note at notes://{id}, and finished exports at
// notes://exports/{id}. Like tools, every read is scoped to the caller.
package resources

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// Notes is the part of the notes store the resources read.
type Notes interface {
	Get(ctx context.Context, owner, id string) (*notes.Note, error)
	List(ctx context.Context, owner string) ([]*notes.Note, error)
}

// Exports reads finished exports.
type Exports interface {
	GetExport(ctx context.Context, owner, id string) (*notes.Export, error)
}

// private marks a user's data: only that user's client may cache it, and
// it may change at any time (2026-07-28 caching, SEP-2549).
var private = mcp.Cacheable{TTLMs: 0, CacheScope: "private"}

// Resources serves the notes resources.
type Resources struct {
	notes   Notes
	exports Exports
}

// Register adds the notes resources to r and returns them, for Subscribe.
// readScope guards reading, subscribing and completing (default
// notes:read).
func Register(r *policy.Registry, n Notes, e Exports, readScope string) *Resources {
	if n == nil || e == nil {
		panic("resources: nil store")
	}
	if readScope == "" {
		readScope = "notes:read"
	}
	// Every notes:// resource is the caller's data: reading or subscribing
	// needs the read scope.
	read := policy.Need(readScope)
	res := &Resources{notes: n, exports: e}
	r.AddResource(&mcp.Resource{
		URI:         notes.IndexURI,
		Name:        "notes-index",
		Title:       "Your notes",
		Description: "A Markdown list of your notes, most recently updated first. Subscribe to hear when it changes.",
		MIMEType:    "text/markdown",
	}, res.readIndex, read)
	r.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: "notes://{id}",
		Name:        "note",
		Title:       "Note",
		Description: "One of your notes, as Markdown. Subscribe to hear when it changes or is deleted.",
		MIMEType:    "text/markdown",
	}, res.readNote, read)
	r.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: "notes://exports/{id}",
		Name:        "notes-export",
		Title:       "Notes export",
		Description: "An export made by the export_notes tool, kept for an hour.",
	}, res.readExport, read)
	return res
}

func (r *Resources) readIndex(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	all, err := r.notes.List(ctx, notes.Owner(ctx, req.Extra))
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Your notes (%d)\n\n", len(all))
	for _, n := range all {
		fmt.Fprintf(&b, "- [%s](%s)", n.Title, n.URI())
		if len(n.Tags) > 0 {
			fmt.Fprintf(&b, " — %s", strings.Join(n.Tags, ", "))
		}
		b.WriteString("\n")
	}
	return &mcp.ReadResourceResult{Cacheable: private, Contents: []*mcp.ResourceContents{{URI: notes.IndexURI, MIMEType: "text/markdown", Text: b.String()}}}, nil
}

// noteID extracts {id} from notes://{id}, or "" for anything else.
func noteID(uri string) string {
	id, ok := strings.CutPrefix(uri, "notes://")
	if !ok || !notes.ValidID(id) || id == "index" {
		return ""
	}
	return id
}

func (r *Resources) readNote(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	id := noteID(uri)
	if id == "" {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	n, err := r.notes.Get(ctx, notes.Owner(ctx, req.Extra), id)
	if errors.Is(err, notes.ErrNotFound) {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	if err != nil {
		return nil, err
	}
	text := fmt.Sprintf("# %s\n\n%s\n", n.Title, n.Body)
	return &mcp.ReadResourceResult{Cacheable: private, Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "text/markdown", Text: text}}}, nil
}

func (r *Resources) readExport(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	id, _ := strings.CutPrefix(uri, "notes://exports/")
	if !notes.ValidID(id) {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	e, err := r.exports.GetExport(ctx, notes.Owner(ctx, req.Extra), id)
	if errors.Is(err, notes.ErrNotFound) {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	if err != nil {
		return nil, err
	}
	return &mcp.ReadResourceResult{Cacheable: private, Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: e.MIMEType, Text: e.Content}}}, nil
}

// Subscribe decides a resources/subscribe (or a 2026-07-28 listen
// subscription) for a notes URI. handled is false for other URIs. A caller
// may subscribe to the index and to their own notes only; another user's
// note is "not found", exactly as when reading it.
func (r *Resources) Subscribe(ctx context.Context, req *mcp.SubscribeRequest) (handled bool, err error) {
	uri := req.Params.URI
	if !strings.HasPrefix(uri, "notes://") {
		return false, nil
	}
	if uri == notes.IndexURI {
		return true, nil
	}
	id := noteID(uri)
	if id == "" {
		return true, mcp.ResourceNotFoundError(uri)
	}
	if _, err := r.notes.Get(ctx, notes.Owner(ctx, req.Extra), id); err != nil {
		if errors.Is(err, notes.ErrNotFound) {
			return true, mcp.ResourceNotFoundError(uri)
		}
		return true, err
	}
	return true, nil
}
