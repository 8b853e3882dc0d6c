// Package prompts offers prompts over the caller's notes: summarize_notes,
// and draft_note, whose topic argument completes from the caller's note
// titles.
package prompts

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// Notes is the part of the notes store the prompts read.
type Notes interface {
	List(ctx context.Context, owner string) ([]*notes.Note, error)
}

// Prompts serves the notes prompts and their completions.
type Prompts struct {
	notes Notes
}

// Limits on what a prompt embeds, so a prompt stays a reasonable size.
const (
	maxNotesInPrompt = 50
	maxBodyInPrompt  = 2000
	maxCompletions   = 100 // the spec's cap on completion values
)

// Register adds the prompts to r and returns them, for Complete. readScope
// guards both prompts, which read the caller's notes (default notes:read).
func Register(r *policy.Registry, n Notes, readScope string) *Prompts {
	if n == nil {
		panic("prompts: nil store")
	}
	if readScope == "" {
		readScope = "notes:read"
	}
	read := policy.Need(readScope)
	p := &Prompts{notes: n}
	r.AddPrompt(&mcp.Prompt{
		Name:        "summarize_notes",
		Title:       "Summarize my notes",
		Description: "Ask the model for a summary of your notes, optionally only those with one tag.",
		Arguments:   []*mcp.PromptArgument{{Name: "tag", Title: "Tag", Description: "only notes with this tag"}},
	}, p.summarize, read)
	r.AddPrompt(&mcp.Prompt{
		Name:        "draft_note",
		Title:       "Draft a note",
		Description: "Ask the model to draft a new note on a topic, building on your related notes.",
		Arguments:   []*mcp.PromptArgument{{Name: "topic", Title: "Topic", Description: "what the note is about (completes from your note titles)", Required: true}},
	}, p.draft, read)
	return p
}

func (p *Prompts) summarize(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	tag := strings.ToLower(strings.TrimSpace(req.Params.Arguments["tag"]))
	all, err := p.notes.List(ctx, notes.Owner(ctx, req.Extra))
	if err != nil {
		return nil, err
	}
	var selected []*notes.Note
	for _, n := range all {
		if tag == "" || slices.Contains(n.Tags, tag) {
			selected = append(selected, n)
		}
	}
	var b strings.Builder
	b.WriteString("Summarize the following notes. Group related ones, list open questions and action items, and keep it short.\n")
	for _, n := range selected[:min(len(selected), maxNotesInPrompt)] {
		writeNote(&b, n)
	}
	if len(selected) > maxNotesInPrompt {
		fmt.Fprintf(&b, "\n(%d more notes omitted)\n", len(selected)-maxNotesInPrompt)
	}
	switch {
	case len(selected) == 0 && tag != "" && len(all) > 0:
		fmt.Fprintf(&b, "\n(No note has the tag %q. Say so, and list the tags that exist instead.)\n", tag)
	case len(selected) == 0:
		b.WriteString("\n(There are no notes yet. Say so, and suggest creating one with notes_create.)\n")
	}
	desc := "Summary of your notes"
	if tag != "" {
		desc += " tagged " + tag
	}
	return &mcp.GetPromptResult{
		Description: desc,
		Messages:    []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: b.String()}}},
	}, nil
}

func (p *Prompts) draft(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	topic := strings.TrimSpace(req.Params.Arguments["topic"])
	if topic == "" {
		return nil, fmt.Errorf("draft_note needs a topic")
	}
	all, err := p.notes.List(ctx, notes.Owner(ctx, req.Extra))
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Draft a new note about %q: a clear title, then a concise body in Markdown. "+
		"When it is ready, offer to save it with the notes_create tool.\n", topic)
	related := 0
	words := strings.Fields(strings.ToLower(topic))
	for _, n := range all {
		title := strings.ToLower(n.Title)
		if related == 10 || !slices.ContainsFunc(words, func(w string) bool { return strings.Contains(title, w) }) {
			continue
		}
		if related == 0 {
			b.WriteString("\nBuild on these related notes:\n")
		}
		related++
		writeNote(&b, n)
	}
	return &mcp.GetPromptResult{
		Description: "Draft a note about " + topic,
		Messages:    []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: b.String()}}},
	}, nil
}

func writeNote(b *strings.Builder, n *notes.Note) {
	body := n.Body
	if len(body) > maxBodyInPrompt {
		body = strings.ToValidUTF8(body[:maxBodyInPrompt], "") + " …"
	}
	fmt.Fprintf(b, "\n## %s (%s)\n%s\n", n.Title, n.URI(), body)
}

// Complete answers completion/complete for draft_note's topic with the
// caller's note titles that start with (or contain) what was typed; handled
// is false for every other reference.
func (p *Prompts) Complete(ctx context.Context, req *mcp.CompleteRequest) (res *mcp.CompleteResult, handled bool, err error) {
	ref := req.Params.Ref
	if ref == nil || ref.Type != "ref/prompt" || ref.Name != "draft_note" || req.Params.Argument.Name != "topic" {
		return nil, false, nil
	}
	all, err := p.notes.List(ctx, notes.Owner(ctx, req.Extra))
	if err != nil {
		return nil, true, err
	}
	typed := strings.ToLower(req.Params.Argument.Value)
	var prefix, contains []string
	seen := map[string]bool{}
	for _, n := range all {
		t := strings.ToLower(n.Title)
		if seen[t] {
			continue
		}
		seen[t] = true
		switch {
		case strings.HasPrefix(t, typed):
			prefix = append(prefix, n.Title)
		case strings.Contains(t, typed):
			contains = append(contains, n.Title)
		}
	}
	values := append(prefix, contains...)
	total := len(values)
	return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{
		Values:  values[:min(total, maxCompletions)],
		Total:   total,
		HasMore: total > maxCompletions,
	}}, true, nil
}
