package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// NoteInput is the input of notes_create.
type NoteInput struct {
	Title string   `json:"title" jsonschema:"a short title, 1-200 characters"`
	Body  string   `json:"body,omitempty" jsonschema:"the note text (Markdown welcome), up to 64 KiB"`
	Tags  []string `json:"tags,omitempty" jsonschema:"up to 16 lowercase tags"`
}

// NoteOutput is one note with its resource URI.
type NoteOutput struct {
	notes.Note
	URI string `json:"uri" jsonschema:"the note's resource URI (notes://{id})"`
}

func output(n *notes.Note) NoteOutput { return NoteOutput{Note: *n, URI: n.URI()} }

func (t *toolset) addNotesCreate(r *policy.Registry) {
	policy.AddTool(r, &mcp.Tool{
		Name:        "notes_create",
		Title:       "Create note",
		Description: "Save a new note for the current user. Returns the note with its id and resource URI.",
		Annotations: &mcp.ToolAnnotations{Title: "Create note", DestructiveHint: &no, OpenWorldHint: &no},
	}, t.create, policy.Need(t.Scopes.Write))
}

func (t *toolset) create(ctx context.Context, req *mcp.CallToolRequest, in NoteInput) (*mcp.CallToolResult, NoteOutput, error) {
	owner := notes.Owner(ctx, req.Extra)
	now := t.Now().UTC()
	n := &notes.Note{ID: newID(), Owner: owner, Title: in.Title, Body: in.Body, Tags: in.Tags, CreatedAt: now, UpdatedAt: now}
	if err := notes.Validate(n); err != nil {
		return nil, NoteOutput{}, fmt.Errorf("cannot create the note: %w", err)
	}
	if err := t.Notes.Put(ctx, n); err != nil {
		return nil, NoteOutput{}, t.putError(err)
	}
	t.Notifier.ResourceUpdated(ctx, owner, notes.IndexURI)
	return nil, output(n), nil
}

// putError says why a note could not be stored and what to do; other
// errors (a store that cannot be reached) pass as they are.
func (t *toolset) putError(err error) error {
	switch {
	case errors.Is(err, notes.ErrLimit):
		return fmt.Errorf("cannot create the note: you already have %d notes, the most allowed; delete some first (notes_delete)", t.Limits.Notes)
	case errors.Is(err, notes.ErrQuota):
		return fmt.Errorf("cannot create the note: your notes would take more than %d bytes, the most allowed; delete or shorten some first (notes_delete)", t.Limits.Bytes)
	case errors.Is(err, notes.ErrFull):
		return errors.New("cannot create the note: the server's note storage is full; delete notes you no longer need, or try again later")
	}
	return err
}

// SearchInput is the input of notes_search.
type SearchInput struct {
	Query string `json:"query,omitempty" jsonschema:"words that must all appear in the title, body or tags (case-insensitive); empty lists every note"`
	Tag   string `json:"tag,omitempty" jsonschema:"only notes with this tag"`
	Limit int    `json:"limit,omitempty" jsonschema:"at most this many results, 1-100 (default 20)"`
}

// NoteSummary is a note without its body.
type NoteSummary struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Tags      []string `json:"tags,omitempty"`
	UpdatedAt string   `json:"updatedAt"`
	URI       string   `json:"uri"`
}

// SearchOutput is the result of notes_search.
type SearchOutput struct {
	Notes []NoteSummary `json:"notes"`
	Total int           `json:"total" jsonschema:"how many notes matched, before the limit"`
}

func (t *toolset) addNotesSearch(r *policy.Registry) {
	policy.AddTool(r, &mcp.Tool{
		Name:        "notes_search",
		Title:       "Search notes",
		Description: "Find the current user's notes by words and tag, most recently updated first.",
		Annotations: &mcp.ToolAnnotations{Title: "Search notes", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, t.search, policy.Need(t.Scopes.Read))
}

func (t *toolset) search(ctx context.Context, req *mcp.CallToolRequest, in SearchInput) (*mcp.CallToolResult, SearchOutput, error) {
	if in.Limit == 0 {
		in.Limit = 20
	}
	if in.Limit < 1 || in.Limit > 100 {
		return nil, SearchOutput{}, fmt.Errorf("limit must be between 1 and 100, not %d", in.Limit)
	}
	all, err := t.Notes.List(ctx, notes.Owner(ctx, req.Extra))
	if err != nil {
		return nil, SearchOutput{}, err
	}
	matches := Match(all, in.Query, in.Tag)
	out := SearchOutput{Notes: []NoteSummary{}, Total: len(matches)}
	for _, n := range matches[:min(len(matches), in.Limit)] {
		out.Notes = append(out.Notes, NoteSummary{ID: n.ID, Title: n.Title, Tags: n.Tags, UpdatedAt: n.UpdatedAt.Format("2006-01-02T15:04:05Z07:00"), URI: n.URI()})
	}
	return nil, out, nil
}

// Match returns the notes containing every word of query and the tag.
func Match(all []*notes.Note, query, tag string) []*notes.Note {
	words := strings.Fields(strings.ToLower(query))
	tag = strings.ToLower(strings.TrimSpace(tag))
	var out []*notes.Note
	for _, n := range all {
		if tag != "" && !slices.Contains(n.Tags, tag) {
			continue
		}
		hay := strings.ToLower(n.Title + "\n" + n.Body + "\n" + strings.Join(n.Tags, " "))
		if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(hay, w) }) {
			out = append(out, n)
		}
	}
	return out
}

// IDInput names one note.
type IDInput struct {
	ID string `json:"id" jsonschema:"the note id, as returned by notes_create or notes_search"`
}

func (t *toolset) addNotesGet(r *policy.Registry) {
	policy.AddTool(r, &mcp.Tool{
		Name:        "notes_get",
		Title:       "Read note",
		Description: "Read one of the current user's notes by id.",
		Annotations: &mcp.ToolAnnotations{Title: "Read note", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, t.get, policy.Need(t.Scopes.Read))
}

func (t *toolset) get(ctx context.Context, req *mcp.CallToolRequest, in IDInput) (*mcp.CallToolResult, NoteOutput, error) {
	n, err := t.load(ctx, req, in.ID)
	if err != nil {
		return nil, NoteOutput{}, err
	}
	return nil, output(n), nil
}

// load fetches the caller's note, with an error that tells what to do.
func (t *toolset) load(ctx context.Context, req *mcp.CallToolRequest, id string) (*notes.Note, error) {
	if !notes.ValidID(id) {
		return nil, fmt.Errorf("%q is not a note id; use notes_search to find one", id)
	}
	n, err := t.Notes.Get(ctx, notes.Owner(ctx, req.Extra), id)
	if errors.Is(err, notes.ErrNotFound) {
		return nil, fmt.Errorf("there is no note with id %q; use notes_search to find one", id)
	}
	return n, err
}
