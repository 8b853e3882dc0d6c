// Package memstore implements the mcpserver stores in process memory: the
// embedded default for a single replica, and the reference for the contract
// tests that every other implementation must pass.
package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/remotemcp/remotemcp/mcpserver"
)

// Options configures the stores. Zero fields mean the documented defaults.
type Options struct {
	// SessionTTL is how long an unused session lives. Default 30 minutes.
	SessionTTL time.Duration
	// MaxEventsPerStream bounds each stream's log; older events are dropped.
	// Default 1000.
	MaxEventsPerStream int
	// MaxSessionsPerSubject bounds the live sessions of one subject
	// (mcpserver.ErrSessionLimit beyond). Default
	// mcpserver.DefaultMaxSessionsPerSubject.
	MaxSessionsPerSubject int
	// ResumeWindow is how long a completed stream is kept after its end,
	// for a client that lost the connection before reading its last
	// events to resume it. A stream that never ends (a session's GET
	// stream) is kept as long as its session. Default
	// mcpserver.DefaultResumeWindow.
	ResumeWindow time.Duration
	// MaxLoggedBytes bounds the bytes of the completed streams a session
	// keeps within the resume window: past it, the oldest are forgotten
	// early. Streams still being written are not counted. Default
	// mcpserver.DefaultMaxLoggedBytes.
	MaxLoggedBytes int64
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// New returns in-process implementations of every mcpserver store.
func New(opts *Options) mcpserver.Stores {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 30 * time.Minute
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
	if o.Now == nil {
		o.Now = time.Now
	}
	sessions := &Sessions{ttl: o.SessionTTL, max: o.MaxSessionsPerSubject, now: o.Now, m: map[string]*sessionEntry{}, perSubject: map[string]int{}}
	events := &Events{max: o.MaxEventsPerStream, ttl: o.SessionTTL, window: o.ResumeWindow, maxBytes: o.MaxLoggedBytes, now: o.Now, m: map[string]*sessionLog{}, sessions: sessions}
	return mcpserver.Stores{
		Sessions:    sessions,
		Events:      events,
		Leases:      events,
		Inbox:       &Inbox{m: map[string]chan []byte{}},
		Broadcaster: &Broadcaster{subs: map[int]chan mcpserver.Broadcast{}},
	}
}

// Sessions is an in-process mcpserver.SessionStore.
type Sessions struct {
	ttl        time.Duration
	max        int // sessions per subject
	now        func() time.Time
	mu         sync.Mutex
	m          map[string]*sessionEntry
	perSubject map[string]int // subject → its entries in m
}

type sessionEntry struct {
	data    []byte // JSON, so callers never share memory with the store
	subject string
	expires time.Time
}

// removeLocked forgets session id.
func (s *Sessions) removeLocked(id string) {
	e, ok := s.m[id]
	if !ok {
		return
	}
	delete(s.m, id)
	if s.perSubject[e.subject]--; s.perSubject[e.subject] <= 0 {
		delete(s.perSubject, e.subject)
	}
}

var _ mcpserver.SessionStore = (*Sessions)(nil)

func (s *Sessions) gcLocked(now time.Time) {
	for id, e := range s.m {
		if now.After(e.expires) {
			s.removeLocked(id)
		}
	}
}

// encodeSession is the record as the store keeps it: JSON, refused past
// mcpserver.MaxSessionBytes (subscriptions not counted).
func encodeSession(sess *mcpserver.Session) ([]byte, error) {
	subs := sess.Subscriptions
	rest := *sess
	rest.Subscriptions = nil
	data, err := json.Marshal(&rest)
	if err != nil {
		return nil, err
	}
	if len(data) > mcpserver.MaxSessionBytes {
		return nil, mcpserver.ErrSessionTooLarge
	}
	if len(subs) == 0 {
		return data, nil
	}
	return json.Marshal(sess)
}

// Create implements mcpserver.SessionStore.
func (s *Sessions) Create(_ context.Context, sess *mcpserver.Session) error {
	data, err := encodeSession(sess)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m)%64 == 0 {
		s.gcLocked(now)
	}
	if e, ok := s.m[sess.ID]; ok && !now.After(e.expires) {
		return fmt.Errorf("memstore: session %s exists", sess.ID)
	}
	s.removeLocked(sess.ID)
	if s.perSubject[sess.Subject] >= s.max {
		s.gcLocked(now) // some may have expired
		if s.perSubject[sess.Subject] >= s.max {
			return mcpserver.ErrSessionLimit
		}
	}
	s.m[sess.ID] = &sessionEntry{data: data, subject: sess.Subject, expires: now.Add(s.ttl)}
	s.perSubject[sess.Subject]++
	return nil
}

func (s *Sessions) getLocked(id string) (*mcpserver.Session, *sessionEntry, error) {
	e, ok := s.m[id]
	now := s.now()
	if !ok || now.After(e.expires) {
		s.removeLocked(id)
		return nil, nil, mcpserver.ErrNotFound
	}
	var sess mcpserver.Session
	if err := json.Unmarshal(e.data, &sess); err != nil {
		return nil, nil, err
	}
	e.expires = now.Add(s.ttl)
	return &sess, e, nil
}

// Get implements mcpserver.SessionStore.
func (s *Sessions) Get(_ context.Context, id string) (*mcpserver.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, _, err := s.getLocked(id)
	return sess, err
}

// Update implements mcpserver.SessionStore.
func (s *Sessions) Update(_ context.Context, id string, fn func(*mcpserver.Session)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, e, err := s.getLocked(id)
	if err != nil {
		return err
	}
	fn(sess)
	sess.ID = id
	data, err := encodeSession(sess)
	if err != nil {
		return err
	}
	e.data = data
	return nil
}

var _ mcpserver.SubscriptionStore = (*Sessions)(nil)

// SetSubscription implements mcpserver.SubscriptionStore. In memory a
// record is cheap to rewrite, so it is.
func (s *Sessions) SetSubscription(_ context.Context, id, uri string, subscribed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, e, err := s.getLocked(id)
	if err != nil {
		return err
	}
	has := slices.Contains(sess.Subscriptions, uri)
	switch {
	case subscribed == has:
		return nil
	case subscribed && len(sess.Subscriptions) >= mcpserver.MaxSubscriptions:
		return mcpserver.ErrSubscriptionLimit
	case subscribed:
		sess.Subscriptions = append(sess.Subscriptions, uri)
	default:
		sess.Subscriptions = slices.DeleteFunc(sess.Subscriptions, func(u string) bool { return u == uri })
	}
	data, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	e.data = data
	return nil
}

// touch extends the lifetime of a live session, as Get does, and reports
// whether there is one.
func (s *Sessions) touch(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	now := s.now()
	if !ok || now.After(e.expires) {
		s.removeLocked(id)
		return false
	}
	e.expires = now.Add(s.ttl)
	return true
}

// Delete implements mcpserver.SessionStore.
func (s *Sessions) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(id)
	return nil
}

// Events is an in-process mcpserver.EventLog and mcpserver.LeaseStore. A
// completed stream (and its lease) is forgotten a resume window after its
// end, or earlier when its session's completed streams exceed the logged
// bytes cap; a session's streams are all forgotten when the session has
// been idle for the session TTL, so logs of sessions that expire without a
// DELETE do not accumulate. What a session holds is thus its open streams
// (each at most MaxEventsPerStream events) and at most MaxLoggedBytes of
// completed ones.
type Events struct {
	max      int
	ttl      time.Duration
	window   time.Duration
	maxBytes int64
	now      func() time.Time
	sessions *Sessions // for StreamWrite.Session

	mu     sync.Mutex
	m      map[string]*sessionLog
	writes int
}

type sessionLog struct {
	streams  map[string]*streamLog
	leases   map[string]*lease // by stream ID
	lastUsed time.Time
	// done lists the completed streams in the order they ended, which is
	// the order they expire in; doneBytes is the size of their events.
	done      []doneStream
	doneBytes int64
}

// A doneStream is a completed stream awaiting its expiry.
type doneStream struct {
	id      string
	bytes   int64
	expires time.Time
}

// A lease is a stream's writer lease (mcpserver.LeaseStore).
type lease struct {
	owner string
	ids   []json.RawMessage
	until time.Time
}

type streamLog struct {
	events []mcpserver.Event
	next   int64
	ended  bool
	wake   chan struct{} // closed and replaced on every change
}

// newSessionLog returns an empty sessionLog.
func newSessionLog() *sessionLog {
	return &sessionLog{streams: map[string]*streamLog{}, leases: map[string]*lease{}}
}

// expireLocked forgets the session's completed streams whose resume
// window is over, and then the oldest completed streams while their bytes
// exceed maxBytes, but never the newest: it may have ended a moment ago,
// with readers yet to read its end.
func (sl *sessionLog) expireLocked(now time.Time, maxBytes int64) {
	n := 0
	for n < len(sl.done) && (now.After(sl.done[n].expires) || (sl.doneBytes > maxBytes && n < len(sl.done)-1)) {
		d := sl.done[n]
		sl.doneBytes -= d.bytes
		delete(sl.streams, d.id)
		delete(sl.leases, d.id)
		sl.done[n] = doneStream{}
		n++
	}
	sl.done = sl.done[n:]
	if cap(sl.done) > 64 && len(sl.done) < cap(sl.done)/4 {
		// Copy to a smaller array now and then (amortized), so that one
		// burst of calls does not keep its size for the session's life.
		sl.done = append([]doneStream(nil), sl.done...)
	}
}

// streamCharge is what a completed stream counts for against
// MaxLoggedBytes on top of its messages: about what it costs in memory
// when empty (its records, map entries and lease), so that the cap bounds
// a session's memory however small its messages.
const streamCharge = 1 << 10

// endLocked marks st, the stream id of sl, complete: it is kept for the
// resume window from now.
func (l *Events) endLocked(sl *sessionLog, id string, st *streamLog, now time.Time) {
	st.ended = true
	size := int64(streamCharge)
	for _, e := range st.events {
		size += int64(len(e.Data))
	}
	sl.done = append(sl.done, doneStream{id: id, bytes: size, expires: now.Add(l.window)})
	sl.doneBytes += size
	sl.expireLocked(now, l.maxBytes)
}

var (
	_ mcpserver.EventLog   = (*Events)(nil)
	_ mcpserver.LeaseStore = (*Events)(nil)
)

func (l *Events) streamLocked(sessionID, streamID string, create bool) *streamLog {
	now := l.now()
	if create {
		if l.writes++; l.writes%256 == 0 {
			l.gcLocked(now)
		}
	}
	sl := l.m[sessionID]
	if sl == nil {
		if !create {
			return nil
		}
		sl = newSessionLog()
		l.m[sessionID] = sl
	}
	sl.lastUsed = now
	sl.expireLocked(now, l.maxBytes)
	st := sl.streams[streamID]
	if st == nil && create {
		st = &streamLog{next: 1, wake: make(chan struct{})}
		sl.streams[streamID] = st
	}
	return st
}

func (l *Events) gcLocked(now time.Time) {
	for id, sl := range l.m {
		sl.expireLocked(now, l.maxBytes)
		if now.Sub(sl.lastUsed) > l.ttl {
			for _, st := range sl.streams {
				if !st.ended {
					st.ended = true
					st.notify()
				}
			}
			delete(l.m, id)
		}
	}
}

func (st *streamLog) notify() {
	close(st.wake)
	st.wake = make(chan struct{})
}

// WriteStream implements mcpserver.EventLog.
func (l *Events) WriteStream(_ context.Context, sessionID, streamID string, w *mcpserver.StreamWrite) (int64, error) {
	if w.Session && !l.sessions.touch(sessionID) {
		return 0, mcpserver.ErrNotFound
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if sl := l.m[sessionID]; sl != nil {
		if cur := sl.leases[streamID]; w.Owner != "" && cur != nil && cur.owner != w.Owner && !now.After(cur.until) {
			return 0, mcpserver.ErrLeased
		}
		if st := sl.streams[streamID]; st != nil && st.ended && len(w.Events) > 0 {
			return 0, fmt.Errorf("memstore: append to ended stream %s", streamID)
		}
	}
	st := l.streamLocked(sessionID, streamID, true)
	if w.Owner != "" {
		l.m[sessionID].leases[streamID] = &lease{owner: w.Owner, ids: cloneIDs(w.IDs), until: now.Add(w.LeaseTTL)}
	}
	for _, data := range w.Events {
		st.events = append(st.events, mcpserver.Event{Seq: st.next, Data: append([]byte(nil), data...)})
		st.next++
	}
	if len(st.events) > l.max {
		st.events = append(st.events[:0:0], st.events[len(st.events)-l.max:]...)
	}
	changed := len(w.Events) > 0
	if w.End && !st.ended {
		l.endLocked(l.m[sessionID], streamID, st, now)
		changed = true
	}
	if changed {
		st.notify()
	}
	return st.next - 1, nil
}

// Read implements mcpserver.EventLog.
func (l *Events) Read(ctx context.Context, sessionID, streamID string, after int64, wait time.Duration) ([]mcpserver.Event, bool, error) {
	var timer <-chan time.Time
	for {
		l.mu.Lock()
		st := l.streamLocked(sessionID, streamID, false)
		if st == nil {
			l.mu.Unlock()
			return nil, false, mcpserver.ErrNotFound
		}
		var out []mcpserver.Event
		for _, e := range st.events {
			if e.Seq > after {
				out = append(out, mcpserver.Event{Seq: e.Seq, Data: append([]byte(nil), e.Data...)})
			}
		}
		ended, wake := st.ended, st.wake
		l.mu.Unlock()
		if len(out) > 0 || ended || wait <= 0 {
			return out, ended, nil
		}
		if timer == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-wake:
		case <-timer:
			return nil, false, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// Lease implements mcpserver.LeaseStore.
func (l *Events) Lease(_ context.Context, sessionID, streamID, owner string, ids []json.RawMessage, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	sl := l.m[sessionID]
	if sl == nil {
		sl = newSessionLog()
		l.m[sessionID] = sl
	}
	sl.lastUsed = now
	if cur := sl.leases[streamID]; cur != nil && cur.owner != owner && !now.After(cur.until) {
		return false, nil
	}
	sl.leases[streamID] = &lease{owner: owner, ids: cloneIDs(ids), until: now.Add(ttl)}
	return true, nil
}

// LeaseHolder implements mcpserver.LeaseStore.
func (l *Events) LeaseHolder(_ context.Context, sessionID, streamID string) (string, []json.RawMessage, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sl := l.m[sessionID]
	if sl == nil || sl.leases[streamID] == nil {
		return "", nil, false, mcpserver.ErrNotFound
	}
	cur := sl.leases[streamID]
	return cur.owner, cloneIDs(cur.ids), !l.now().After(cur.until), nil
}

func cloneIDs(ids []json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(ids))
	for i, id := range ids {
		out[i] = append(json.RawMessage(nil), id...)
	}
	return out
}

// DeleteSession implements mcpserver.EventLog.
func (l *Events) DeleteSession(_ context.Context, sessionID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sl := l.m[sessionID]; sl != nil {
		for _, st := range sl.streams {
			if !st.ended {
				st.ended = true
				st.notify()
			}
		}
	}
	delete(l.m, sessionID)
	return nil
}

// Inbox is an in-process mcpserver.Inbox.
type Inbox struct {
	mu sync.Mutex
	m  map[string]chan []byte
}

var _ mcpserver.Inbox = (*Inbox)(nil)

func inboxKey(sessionID, key string) string { return sessionID + "\x00" + key }

// Deliver implements mcpserver.Inbox.
func (b *Inbox) Deliver(ctx context.Context, sessionID, key string, msg []byte) error {
	b.mu.Lock()
	ch := b.m[inboxKey(sessionID, key)]
	b.mu.Unlock()
	if ch == nil {
		return mcpserver.ErrNotFound
	}
	select {
	case ch <- append([]byte(nil), msg...):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Listen implements mcpserver.Inbox.
func (b *Inbox) Listen(_ context.Context, sessionID, key string) (<-chan []byte, func(), error) {
	k := inboxKey(sessionID, key)
	ch := make(chan []byte, 8)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[k]; ok {
		return nil, nil, fmt.Errorf("memstore: inbox %q already has a listener", key)
	}
	b.m[k] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.m, k)
			b.mu.Unlock()
		})
	}, nil
}

// Broadcaster is an in-process mcpserver.Broadcaster.
type Broadcaster struct {
	mu   sync.Mutex
	next int
	subs map[int]chan mcpserver.Broadcast
}

var _ mcpserver.Broadcaster = (*Broadcaster)(nil)

// Publish implements mcpserver.Broadcaster. A subscriber that does not keep
// up loses the broadcast rather than stalling the publisher.
func (b *Broadcaster) Publish(_ context.Context, m mcpserver.Broadcast) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs {
		select {
		case ch <- m:
		default:
		}
	}
	return nil
}

// Subscribe implements mcpserver.Broadcaster.
func (b *Broadcaster) Subscribe(context.Context) (<-chan mcpserver.Broadcast, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	ch := make(chan mcpserver.Broadcast, 64)
	b.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, id)
			b.mu.Unlock()
		})
	}, nil
}
