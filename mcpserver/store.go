package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ErrNotFound is returned by stores for a missing or expired record.
var ErrNotFound = errors.New("mcpserver: not found")

// A Session is the durable record of one legacy (pre-2026-07-28) MCP session.
// Everything a replica needs to serve any request of the session lives here,
// so that no replica has to hold it in memory.
type Session struct {
	ID      string `json:"id"`
	Subject string `json:"sub"` // the principal that created the session
	// State is what the go-sdk needs to rebuild the session for a request:
	// the initialize params, the negotiated version and the log level (see
	// Handler.serveCalls for why sessions are rebuilt).
	State mcp.ServerSessionState `json:"state"`
	// Subscriptions holds the resource URIs the client subscribed to.
	Subscriptions []string `json:"subscriptions,omitempty"`
	// View fingerprints the scopes and claims of the token the session
	// was last used with, which decide what its lists show (see view.go).
	View      string    `json:"view,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// ErrSessionLimit is returned by SessionStore.Create when the session's
// subject already has as many live sessions as the store allows.
var ErrSessionLimit = errors.New("mcpserver: too many sessions for one subject")

// DefaultMaxSessionsPerSubject is the default limit on the live sessions
// of one subject in this module's stores.
const DefaultMaxSessionsPerSubject = 100

// A SessionStore keeps legacy session records. Records expire after the
// store's idle TTL unless read or updated.
type SessionStore interface {
	// Create stores a new session; it fails if the ID exists, and with
	// ErrSessionLimit if the session's Subject already has the store's
	// limit of live (created, not deleted nor expired) sessions
	// (DefaultMaxSessionsPerSubject unless configured otherwise).
	Create(ctx context.Context, s *Session) error
	// Get returns the session and extends its lifetime, or ErrNotFound.
	Get(ctx context.Context, id string) (*Session, error)
	// Update applies fn to the stored session atomically, or returns ErrNotFound.
	Update(ctx context.Context, id string, fn func(*Session)) error
	// Delete removes the session. Deleting a missing session is not an error.
	Delete(ctx context.Context, id string) error
}

// An Event is one message in a stream's event log.
type Event struct {
	Seq  int64  // 1-based position in the stream
	Data []byte // one JSON-RPC message
}

// An EventLog records the messages of every SSE stream of a legacy session so
// that a client can resume a broken stream with Last-Event-ID on any
// replica.
//
// A stream that is still being written lives as long as its session (at
// most its last MaxEventsPerStream events, as the stores call it); so does
// a session's GET stream, which never ends. A completed stream (a request's
// stream, once its responses are logged) is kept only for the resume
// window after its end, and only while the session's completed streams
// hold at most a logged-bytes cap (the oldest go first; the newest is
// kept); after that, Read returns ErrNotFound for it, as for a stream that
// never existed. A client resumes a stream only when the connection broke
// before its last response arrived, which it learns within seconds, so a
// short window serves every resume while a busy session's store stays
// bounded by its calls of the last window.
type EventLog interface {
	// WriteStream creates the stream if it does not exist yet and applies
	// w in order: the session check, the lease, the events, the end, in
	// one call (one round trip for a shared store). It returns the
	// sequence number of the stream's last event (0 if none). If a check
	// fails (ErrNotFound for a missing session, ErrLeased, or an error for
	// events on an ended stream), nothing is changed.
	WriteStream(ctx context.Context, sessionID, streamID string, w *StreamWrite) (last int64, err error)
	// Read returns the events after seq, waiting at most wait for one to arrive.
	// ended reports that the stream is complete and every event was returned.
	// A stream that was never written returns ErrNotFound.
	Read(ctx context.Context, sessionID, streamID string, after int64, wait time.Duration) (events []Event, ended bool, err error)
	// DeleteSession forgets every stream of the session, and their leases.
	DeleteSession(ctx context.Context, sessionID string) error
}

// DefaultResumeWindow is how long the stores keep a completed stream for a
// client to resume (see EventLog) unless configured otherwise.
const DefaultResumeWindow = 2 * time.Minute

// DefaultMaxLoggedBytes is the default cap on the bytes of the completed
// streams that one session keeps within the resume window (see EventLog):
// a backstop for a session calling faster than the window was sized for.
// A store counts a stream's messages plus a fixed charge for the stream
// (about what an empty one costs it), so that the cap bounds memory.
const DefaultMaxLoggedBytes = 4 << 20

// ErrLeased is returned by EventLog.WriteStream when another owner holds a
// live lease on the stream.
var ErrLeased = errors.New("mcpserver: stream leased by another owner")

// A StreamWrite is what EventLog.WriteStream does to a stream.
type StreamWrite struct {
	// Session requires the session's record (in the SessionStore of the
	// same Stores) to exist, and extends its lifetime as
	// SessionStore.Get does.
	Session bool
	// Owner, if not empty, takes or renews the stream's lease for Owner
	// until LeaseTTL from now, recording IDs, as LeaseStore.Lease does.
	Owner    string
	IDs      []json.RawMessage
	LeaseTTL time.Duration
	// Events are appended in order.
	Events [][]byte
	// End marks the stream complete after Events. Ending an ended stream
	// is not an error.
	End bool
}

// A LeaseStore keeps the writer leases of request streams: the replica
// running a request holds a lease on the request's stream and renews it
// while the request runs. A replica serving a resumed stream (Last-Event-ID)
// that finds the lease lapsed and the stream not ended takes the lease
// over, answers the stream's unanswered requests with an error and ends
// the stream, so that a client whose replica died does not wait forever.
//
// A lease record outlives the lease itself as long as its stream's log, so
// that whoever takes it over learns the request IDs; EventLog.DeleteSession
// forgets it. Expiry is judged by one clock (the store's), not by each
// replica's. EventLog.WriteStream takes leases of the same store too.
type LeaseStore interface {
	// Lease takes or renews the lease of (sessionID, streamID) for owner
	// until ttl from now, recording ids, the JSON-encoded JSON-RPC IDs of
	// the requests the stream answers. It returns false, and changes
	// nothing, if another owner holds a live lease.
	Lease(ctx context.Context, sessionID, streamID, owner string, ids []json.RawMessage, ttl time.Duration) (bool, error)
	// LeaseHolder returns the stream's lease: its owner, its ids, and
	// whether it is live. It returns ErrNotFound if the stream was never
	// leased (or its session was deleted).
	LeaseHolder(ctx context.Context, sessionID, streamID string) (owner string, ids []json.RawMessage, live bool, err error)
}

// An Inbox routes a message to whichever replica waits for it: a client's
// response to a server-to-client request (elicitation), or a cancellation of
// an in-flight request.
type Inbox interface {
	// Deliver hands msg to the listener of (sessionID, key), if any: at
	// most once, and only if it listened before Deliver was called. It
	// returns ErrNotFound if it knows that nobody listens; a store that
	// routes through a channel every replica receives may not know, and
	// returns nil.
	Deliver(ctx context.Context, sessionID, key string, msg []byte) error
	// Listen receives messages for (sessionID, key) until stop is called.
	// A message delivered shortly before Listen may be received too: keys
	// are not reused (JSON-RPC IDs are unique within a session).
	Listen(ctx context.Context, sessionID, key string) (msgs <-chan []byte, stop func(), err error)
}

// A Broadcast is a server-initiated notification for every session that
// cares: a list change (Owner empty) or a change to one user's resource.
type Broadcast struct {
	Method string `json:"method"`          // e.g. notifications/resources/updated
	URI    string `json:"uri,omitempty"`   // for resource updates
	Owner  string `json:"owner,omitempty"` // only this subject's sessions may see it
	// Session is set by the Handler on the broadcasts that tell every
	// replica that a session's record changed (or is gone): the SHA-256,
	// in hex, of the session's ID.
	Session string `json:"session,omitempty"`
}

// A Broadcaster fans notifications out to every replica.
type Broadcaster interface {
	Publish(ctx context.Context, b Broadcast) error
	// Subscribe receives every broadcast published after it returns.
	Subscribe(ctx context.Context) (msgs <-chan Broadcast, stop func(), err error)
}

// Stores bundles the state a Handler keeps outside the process.
type Stores struct {
	Sessions    SessionStore
	Events      EventLog
	Leases      LeaseStore // the leases of Events' streams
	Inbox       Inbox
	Broadcaster Broadcaster
}
