// Package notes is the notes domain shared by the tools, resources and
// prompts packages: the Note record, the consumer-side store interfaces, and
// the caller's identity as the MCP layer sees it. Every operation is scoped
// to an owner (the token subject); one user can never reach another's notes.
package notes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ErrNotFound is returned for a note or export that does not exist or
// belongs to someone else: the two are indistinguishable on purpose.
var ErrNotFound = errors.New("notes: not found")

// ErrUnavailable is wrapped by a store's error when the store cannot be
// reached or refuses to answer (a network error, a timeout, a server
// that is down or refuses writes). The MCP layer recognizes it (by its
// Unavailable method) and answers the request 503 with Retry-After,
// keeping the error's text, which may name internal addresses, in its
// log. Handlers pass such errors on as they are.
var ErrUnavailable error = unavailableError{}

type unavailableError struct{}

func (unavailableError) Error() string { return "notes: store unavailable" }

// Unavailable marks the error for the MCP layer (mcpserver.IsUnavailable).
func (unavailableError) Unavailable() bool { return true }

// ErrLimit is returned when an owner has as many notes as allowed
// (Limits.Notes).
var ErrLimit = errors.New("notes: limit reached")

// ErrQuota is returned when an owner's notes would take more bytes than
// allowed (Limits.Bytes).
var ErrQuota = errors.New("notes: storage quota reached")

// ErrFull is returned by a store whose memory budget is spent (all
// owners together): nobody can store more until some is freed.
var ErrFull = errors.New("notes: store full")

// Limits on what one note may hold.
const (
	MaxTitle = 200
	MaxBody  = 64 << 10
	MaxTags  = 16
	MaxTag   = 32
)

// Defaults of Limits.
const (
	DefaultMaxNotes   = 1000
	DefaultMaxBytes   = 4 << 20
	DefaultMaxExports = 5
)

// Limits bound what one owner may store, so that one token cannot fill
// the store. Zero fields mean the defaults.
type Limits struct {
	// Notes is the most notes an owner may have. Default
	// DefaultMaxNotes (1000).
	Notes int
	// Bytes is the most bytes an owner's notes may take, as Size counts
	// them. Default DefaultMaxBytes (4 MiB).
	Bytes int
	// Exports is the most exports an owner holds at once; storing
	// another drops the one stored first. Default DefaultMaxExports (5).
	Exports int
}

// WithDefaults fills zero fields with the defaults.
func (l Limits) WithDefaults() Limits {
	if l.Notes <= 0 {
		l.Notes = DefaultMaxNotes
	}
	if l.Bytes <= 0 {
		l.Bytes = DefaultMaxBytes
	}
	if l.Exports <= 0 {
		l.Exports = DefaultMaxExports
	}
	return l
}

// Size is what a note counts against its owner's Limits.Bytes: the bytes
// of its title, body and tags.
func Size(n *Note) int {
	size := len(n.Title) + len(n.Body)
	for _, t := range n.Tags {
		size += len(t)
	}
	return size
}

// A Note is one user's note.
type Note struct {
	ID        string    `json:"id"`
	Owner     string    `json:"-"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Tags      []string  `json:"tags,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// URI is the note's resource URI.
func (n *Note) URI() string { return "notes://" + n.ID }

// IndexURI is the resource listing the caller's notes.
const IndexURI = "notes://index"

// An Export is the output of export_notes, readable as a resource for a while.
type Export struct {
	ID        string    `json:"id"`
	Owner     string    `json:"-"`
	MIMEType  string    `json:"mimeType"`
	Content   string    `json:"content"`
	Count     int       `json:"count"`
	CreatedAt time.Time `json:"createdAt"`
}

// URI is the export's resource URI.
func (e *Export) URI() string { return "notes://exports/" + e.ID }

// A Store keeps notes per owner.
type Store interface {
	// Put creates or replaces the note (Owner, ID). It returns ErrLimit when
	// a new note would exceed the owner's Limits.Notes, and ErrQuota when
	// the owner's notes would exceed Limits.Bytes (a replaced note counts
	// with its new Size instead of its old); nothing is stored then.
	Put(ctx context.Context, n *Note) error
	// Get returns the owner's note, or ErrNotFound.
	Get(ctx context.Context, owner, id string) (*Note, error)
	// List returns all of the owner's notes, most recently updated first.
	List(ctx context.Context, owner string) ([]*Note, error)
	// Delete removes the owner's note, or returns ErrNotFound.
	Delete(ctx context.Context, owner, id string) error
}

// An ExportStore keeps finished exports for a limited time, at most
// Limits.Exports per owner (storing another drops the one stored first).
type ExportStore interface {
	PutExport(ctx context.Context, e *Export) error
	GetExport(ctx context.Context, owner, id string) (*Export, error)
}

// Anonymous is the single user of a server running with --auth none.
const Anonymous = "anonymous"

// Owner returns the subject of the request's token, or Anonymous when the
// server runs without authentication. The token comes from the request's
// Extra or, for requests the go-sdk makes up itself (the subscriptions of a
// 2026-07-28 listen), from the context of the HTTP request.
func Owner(ctx context.Context, extra *mcp.RequestExtra) string {
	ti := auth.TokenInfoFromContext(ctx)
	if extra != nil && extra.TokenInfo != nil {
		ti = extra.TokenInfo
	}
	if ti != nil && ti.UserID != "" {
		return ti.UserID
	}
	return Anonymous
}

// Validate checks a note's user-supplied fields and normalizes its tags.
// Its errors are written for the person (or model) that sent the input.
func Validate(n *Note) error {
	n.Title = strings.TrimSpace(n.Title)
	switch {
	case n.Title == "":
		return errors.New("title is required")
	case utf8.RuneCountInString(n.Title) > MaxTitle:
		return fmt.Errorf("title is longer than %d characters", MaxTitle)
	case len(n.Body) > MaxBody:
		return fmt.Errorf("body is larger than %d bytes", MaxBody)
	case !utf8.ValidString(n.Title) || !utf8.ValidString(n.Body):
		return errors.New("title and body must be valid UTF-8")
	case len(n.Tags) > MaxTags:
		return fmt.Errorf("at most %d tags are allowed", MaxTags)
	}
	seen := map[string]bool{}
	var tags []string // a new slice: never rewrite the caller's
	for _, t := range n.Tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" || seen[t] {
			continue
		}
		if utf8.RuneCountInString(t) > MaxTag {
			return fmt.Errorf("tag %q is longer than %d characters", t, MaxTag)
		}
		seen[t] = true
		tags = append(tags, t)
	}
	n.Tags = tags
	return nil
}

// ValidID reports whether id has the shape of a note or export ID, so that
// garbage never reaches a store.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
