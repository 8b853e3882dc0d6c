// Package tools is remotemcp's own toolset: whoami and per-user notes. Each
// tool lives in its own file, with typed input and output whose JSON schemas
// the go-sdk derives, so that bad input comes back as a helpful tool error
// (isError) rather than a protocol failure. It is also the template for a
// team's own tools: see README "Adding a tool".
package tools

import (
	"context"
	"crypto/rand"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/remotemcp/remotemcp/policy"

	"github.com/remotemcp/remotemcp/tools/notes"
)

// A Notifier tells subscribed clients that one of a user's resources changed
// (mcpserver.Notifier).
type Notifier interface {
	ResourceUpdated(ctx context.Context, owner, uri string) error
}

// A Sealer integrity-protects MRTR requestState, bound to a subject and a
// purpose (mcpserver.StateSealer).
type Sealer interface {
	Seal(subject, purpose string, payload []byte) string
	Open(subject, purpose, state string) ([]byte, error)
}

// Deps is what the tools need from the rest of the program.
type Deps struct {
	Notes    notes.Store
	Exports  notes.ExportStore
	Notifier Notifier
	Sealer   Sealer
	// ExportPace is the time export_notes spends per note, so that a large
	// export yields to other work and reports steady progress. Default 25ms.
	ExportPace time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Scopes names the OAuth scopes the tools need; zero fields mean
	// notes:read and notes:write.
	Scopes Scopes
	// Limits are the per-user limits the stores enforce, which the tools
	// name in their errors; zero fields mean notes' defaults.
	Limits notes.Limits
	// Upstream, if set, lets whoami show the caller's identity at the
	// upstream identity provider (--auth proxy).
	Upstream Upstream
}

// Scopes are the names of the scopes that guard the notes, configurable for
// authorization servers that use other names.
type Scopes struct {
	Read  string // reading notes, exports, prompts
	Write string // creating and deleting notes
}

// WithDefaults fills empty names with notes:read and notes:write.
func (s Scopes) WithDefaults() Scopes {
	if s.Read == "" {
		s.Read = "notes:read"
	}
	if s.Write == "" {
		s.Write = "notes:write"
	}
	return s
}

// Register adds every tool to r, each with the scopes it needs, which the
// bearer middleware checks before the tool runs. It panics on a missing
// dependency, a wiring mistake.
func Register(r *policy.Registry, d Deps) {
	if d.Notes == nil || d.Exports == nil || d.Notifier == nil || d.Sealer == nil {
		panic("tools: incomplete Deps")
	}
	if d.ExportPace <= 0 {
		d.ExportPace = 25 * time.Millisecond
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	d.Scopes = d.Scopes.WithDefaults()
	d.Limits = d.Limits.WithDefaults()
	t := &toolset{Deps: d}
	addWhoAmI(r, d.Upstream)
	t.addNotesCreate(r)
	t.addNotesSearch(r)
	t.addNotesGet(r)
	t.addNotesDelete(r)
	t.addExportNotes(r)
}

type toolset struct{ Deps }

// newID returns a random identifier for a note or export.
func newID() string { return strings.ToLower(rand.Text()[:20]) }

// Hints used in annotations.
var (
	yes = true
	no  = false
)

// isModern reports whether the request uses the stateless 2026-07-28
// revision, where server-to-client requests become MRTR input requests.
func isModern(req *mcp.CallToolRequest) bool {
	p := req.Session.InitializeParams()
	return p != nil && p.ProtocolVersion >= "2026-07-28"
}
