package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/remotemcp/remotemcp/mcpserver"
)

// Options configures the stores. Zero fields mean the documented defaults.
type Options struct {
	// KeyPrefix starts every key and channel name, so that several
	// deployments can share one Redis. It must not contain '{' or '}',
	// which would change the hash tags. Default "remotemcp:".
	KeyPrefix string
	// SessionTTL is how long an unused session lives: Get and Update
	// extend it. Default 30 minutes.
	SessionTTL time.Duration
	// EventTTL is how long an unused event stream that is still being
	// written (or never ends, as a session's GET stream) lives: every
	// write and read of the stream extends it. Default SessionTTL.
	EventTTL time.Duration
	// ResumeWindow is how long a completed stream is kept after its end,
	// for a client that lost the connection before reading its last
	// events to resume it. Default mcpserver.DefaultResumeWindow.
	ResumeWindow time.Duration
	// MaxLoggedBytes bounds the bytes of the completed streams a session
	// keeps within the resume window: past it, the oldest are deleted
	// early. Default mcpserver.DefaultMaxLoggedBytes.
	MaxLoggedBytes int64
	// MaxEventsPerStream bounds each stream's log; older events are
	// dropped. Default 1000.
	MaxEventsPerStream int
	// MaxSessionsPerSubject bounds the live sessions of one subject
	// (mcpserver.ErrSessionLimit beyond). Default
	// mcpserver.DefaultMaxSessionsPerSubject.
	MaxSessionsPerSubject int
	// Logger receives the state of the shared pub/sub connection (lost,
	// restored) and dropped messages; nil discards.
	Logger *slog.Logger
}

// DefaultKeyPrefix is the KeyPrefix used when Options leaves it empty.
const DefaultKeyPrefix = "remotemcp:"

// confirmTimeout bounds the wait for Redis to confirm the subscriptions
// or a ping on the shared pub/sub connection, for callers whose context
// has no deadline (a paused or partitioned Redis must not hang them).
const confirmTimeout = 5 * time.Second

// New returns Redis implementations of every mcpserver store, and stop,
// which ends the pub/sub connection that Inbox, Broadcaster and waiting
// EventLog reads share (it is opened and subscribed at once, in the
// background), closing every Listen and Subscribe channel. stop does not
// close rdb.
//
// rdb is a *redis.Client (one server, or Sentinel) or a
// *redis.ClusterClient; it should have ContextTimeoutEnabled set, so that a
// request's deadline bounds its Redis calls. The stores need Redis 6.2 or
// later. On Cluster, all keys of a session share one hash slot; pub/sub
// uses classic (cluster-wide) channels.
func New(rdb redis.UniversalClient, opts *Options) (stores mcpserver.Stores, stop func() error) {
	if rdb == nil {
		panic("redisstore: nil redis client")
	}
	if _, ok := rdb.(*redis.Ring); ok {
		// A Ring shards pub/sub channels over independent servers, so
		// that replicas would not meet on them.
		panic("redisstore: a redis.Ring is not supported; use one server, Sentinel or Cluster")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		panic("redisstore: KeyPrefix must not contain '{' or '}'")
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 30 * time.Minute
	}
	if o.EventTTL <= 0 {
		o.EventTTL = o.SessionTTL
	}
	if o.MaxEventsPerStream <= 0 {
		o.MaxEventsPerStream = 1000
	}
	if o.MaxSessionsPerSubject <= 0 {
		o.MaxSessionsPerSubject = mcpserver.DefaultMaxSessionsPerSubject
	}
	if o.ResumeWindow <= 0 {
		o.ResumeWindow = mcpserver.DefaultResumeWindow
	}
	if o.MaxLoggedBytes <= 0 {
		o.MaxLoggedBytes = mcpserver.DefaultMaxLoggedBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	k := keys{prefix: o.KeyPrefix}
	h := newHub(rdb, o.Logger, k.wake(), k.broadcast(), k.inboxPattern())
	events := &Events{rdb: rdb, keys: k, hub: h, ttl: o.EventTTL, window: o.ResumeWindow, maxBytes: o.MaxLoggedBytes, max: o.MaxEventsPerStream, sessionTTL: o.SessionTTL}
	return mcpserver.Stores{
		Sessions:    &Sessions{rdb: rdb, keys: k, ttl: o.SessionTTL, max: o.MaxSessionsPerSubject},
		Events:      events,
		Leases:      events,
		Inbox:       &Inbox{rdb: rdb, keys: k, hub: h, log: o.Logger},
		Broadcaster: &Broadcaster{rdb: rdb, keys: k, hub: h},
	}, h.close
}

// keys names every key and channel. All keys of one session carry the hash
// tag {s:<id>}, so that they live in one Cluster slot and a script may use
// several of them.
type keys struct{ prefix string }

func (k keys) tag(sessionID string) string { return k.prefix + hashTag(sessionID) }

// hashTag is the Cluster hash tag of a session.
func hashTag(sessionID string) string { return "{s:" + escape(sessionID) + "}" }

// session is the STRING holding a session's JSON record.
func (k keys) session(id string) string { return k.tag(id) + ":session" }

// subscriptions is the SET of a session's resource subscriptions, kept
// apart from the record so that a subscription does not rewrite it; it
// lives as long as the record.
func (k keys) subscriptions(id string) string { return k.tag(id) + ":subs" }

// subjectSessions is the SET of the IDs of one subject's sessions, for
// their limit, tagged with the hex SHA-256 of the subject (any bytes, any
// length).
func (k keys) subjectSessions(subject string) string {
	h := sha256.Sum256([]byte(subject))
	return k.prefix + "{u:" + hex.EncodeToString(h[:]) + "}:sessions"
}

// streams is the ZSET indexing a session's open event streams (member:
// stream ID, score: when its key expires, in server ms), so that
// DeleteSession finds them; done lists the completed ones.
func (k keys) streams(id string) string { return k.tag(id) + ":streams" }

// done is the ZSET of a session's completed streams (member:
// "<count>:<bytes>:<stream ID>", score: the end of its resume window, in
// server ms).
func (k keys) done(id string) string { return k.tag(id) + ":done" }

// logged is the HASH counting the bytes of the streams in done ("bytes")
// and the streams that ever ended ("ended").
func (k keys) logged(id string) string { return k.tag(id) + ":logged" }

// events is the STREAM holding one event stream of a session.
func (k keys) events(id, stream string) string { return k.tag(id) + ":events:" + stream }

// lease is the HASH holding the writer lease of one event stream
// (mcpserver.LeaseStore).
func (k keys) lease(id, stream string) string { return k.tag(id) + ":lease:" + stream }

// inbox is the channel of one Inbox key of a session.
func (k keys) inbox(id, key string) string { return k.prefix + "inbox:" + hashTag(id) + ":" + key }

// inboxPattern matches every inbox channel (the prefix's glob characters
// escaped).
func (k keys) inboxPattern() string {
	return globEscape(k.prefix) + "inbox:*"
}

// globEscape escapes the characters special in a Redis glob pattern.
func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(s)
}

// broadcast is the channel of every Broadcast.
func (k keys) broadcast() string { return k.prefix + "broadcast" }

// wake is the channel on which every change of an event stream is
// announced (the message is the stream's key), so that a Read waiting on
// any replica looks again.
func (k keys) wake() string { return k.prefix + "wake" }

// escape makes an ID safe inside a hash tag: a '{' or '}' in it would end
// the tag early and could make two IDs share keys.
func escape(id string) string {
	if !strings.ContainsAny(id, "{}%") {
		return id
	}
	return strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D").Replace(id)
}

// errClosed is returned by subscriptions after close.
var errClosed = errors.New("redisstore: closed")

// wrapf adds context to a non-nil *err, and turns redis.Nil into
// mcpserver.ErrNotFound so that it never leaks. Session IDs are never part
// of the message: they are bearer handles, and errors end up in logs.
func wrapf(err *error, format string, args ...any) {
	if *err == nil {
		return
	}
	if errors.Is(*err, redis.Nil) {
		*err = mcpserver.ErrNotFound
	}
	*err = fmt.Errorf("redisstore: "+format+": %w", append(args, *err)...)
}
